//! Every field of CRIU's `criu_opts` has a setter, listed in README.md: this walks the
//! fields of the `rpc.proto` that libcriu-dev ships ($CKPT_RPC_PROTO) against that table, so a
//! field added by a newer CRIU, or a row whose setter does not exist, fails here.
//!
//! A row either names its C setters (each must be declared in include/ckpt.h) or says
//! "set by ckpt" with the reason, for the fields ckpt fills itself.

#[path = "../core/tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The text without `/* ... */` and `// ...` comments.
fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r);
        } else if rest.starts_with("//") {
            rest = rest.find('\n').map_or("", |i| &rest[i..]);
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// `criu_opts`' fields as (number -> name), read from the proto file.
fn criu_opts_fields(proto: &str) -> BTreeMap<u32, String> {
    let text = strip_comments(proto);
    let start = text
        .find("message criu_opts")
        .expect("rpc.proto has no message criu_opts");
    let body = &text[start..];
    let body = &body[body.find('{').unwrap() + 1..];
    let body = &body[..body.find('}').expect("criu_opts is not closed")];
    let mut fields = BTreeMap::new();
    for decl in body.split(';') {
        let decl = decl.trim();
        if decl.is_empty() {
            continue;
        }
        // `optional|required|repeated TYPE NAME = NUMBER [options]`
        let (lhs, rhs) = decl
            .split_once('=')
            .unwrap_or_else(|| panic!("cannot read the field declaration {decl:?}"));
        let words: Vec<&str> = lhs.split_whitespace().collect();
        assert!(
            words.len() == 3 && ["optional", "required", "repeated"].contains(&words[0]),
            "unexpected field declaration {decl:?}"
        );
        let number: u32 = rhs
            .split(|c: char| !c.is_ascii_digit())
            .find(|w| !w.is_empty())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no field number in {decl:?}"));
        let name = words[2].to_string();
        assert!(
            fields.insert(number, name).is_none(),
            "field number {number} twice"
        );
    }
    fields
}

struct Row {
    number: u32,
    field: String,
    setters: Vec<String>,
    setter_cell: String,
    version: String,
}

fn backticked(s: &str) -> Vec<String> {
    s.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The rows of the table in README.md whose first cell is a field number.
fn table_rows(doc: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    for line in doc.lines() {
        let Some(inner) = line.trim().strip_prefix('|') else {
            continue;
        };
        let cells: Vec<&str> = inner
            .trim_end_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        let Ok(number) = cells[0].parse::<u32>() else {
            continue;
        };
        assert_eq!(
            cells.len(),
            6,
            "README.md row {number}: expected 6 cells (#, field, setters, Go, runc, CRIU)"
        );
        let field = backticked(cells[1]).into_iter().next().unwrap_or_default();
        rows.push(Row {
            number,
            field,
            setters: backticked(cells[2])
                .into_iter()
                .filter(|w| w.starts_with("ckpt_"))
                .collect(),
            setter_cell: cells[2].to_string(),
            version: cells[5].to_string(),
        });
    }
    rows
}

/// The function names include/ckpt.h declares.
fn header_functions() -> BTreeSet<String> {
    let header = std::fs::read_to_string(root().join("include/ckpt.h")).unwrap();
    strip_comments(&header)
        .split(';')
        .filter_map(|decl| {
            let head = decl.split('(').next()?;
            let name = head
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .rfind(|w| !w.is_empty())?;
            (decl.contains('(') && name.starts_with("ckpt_")).then(|| name.to_string())
        })
        .collect()
}

#[test]
fn every_criu_opts_field_has_a_setter_in_the_table() {
    let proto_path = common::rpc_proto();
    let fields = criu_opts_fields(&std::fs::read_to_string(&proto_path).unwrap());
    assert!(
        fields.len() >= 70,
        "read only {} fields from {}",
        fields.len(),
        proto_path.display()
    );
    let doc = std::fs::read_to_string(root().join("README.md")).unwrap();
    let rows = table_rows(&doc);
    let declared = header_functions();
    assert!(
        declared.contains("ckpt_opts_new"),
        "could not read include/ckpt.h's functions"
    );

    let mut errs = Vec::new();
    let mut by_number: BTreeMap<u32, &Row> = BTreeMap::new();
    for r in &rows {
        if by_number.insert(r.number, r).is_some() {
            errs.push(format!("field {} has two rows", r.number));
        }
    }
    for (n, name) in &fields {
        match by_number.get(n) {
            None => errs.push(format!(
                "criu_opts.{name} (= {n}) has no row in README.md: add its setter"
            )),
            Some(r) if &r.field != name => errs.push(format!(
                "row {n} names `{}`, but field {n} of criu_opts is `{name}`",
                r.field
            )),
            Some(_) => {}
        }
    }
    let mut with_setter = 0;
    let mut managed = 0;
    for r in &rows {
        if !fields.contains_key(&r.number) {
            errs.push(format!(
                "row {} (`{}`): criu_opts has no such field in {}",
                r.number,
                r.field,
                proto_path.display()
            ));
        }
        for s in &r.setters {
            if !declared.contains(s) {
                errs.push(format!(
                    "row {} (`{}`): `{s}` is not declared in include/ckpt.h",
                    r.number, r.field
                ));
            }
        }
        let cell = r.setter_cell.trim();
        if cell.starts_with("set by ckpt") {
            let reason = cell
                .trim_start_matches("set by ckpt")
                .trim_start_matches(':')
                .trim();
            if reason.len() < 10 {
                errs.push(format!(
                    "row {} (`{}`): \"set by ckpt\" needs the reason",
                    r.number, r.field
                ));
            }
            managed += 1;
        } else if r.setters.is_empty() {
            errs.push(format!(
                "row {} (`{}`): no setter and not \"set by ckpt\"",
                r.number, r.field
            ));
        } else {
            with_setter += 1;
        }
        if r.version.is_empty() || !r.version.chars().any(|c| c.is_ascii_digit()) {
            errs.push(format!(
                "row {} (`{}`): the CRIU version is missing",
                r.number, r.field
            ));
        }
    }
    assert!(
        errs.is_empty(),
        "README.md against {}:\n  {}",
        proto_path.display(),
        errs.join("\n  ")
    );
    println!(
        "{} criu_opts fields: {with_setter} with setters, {managed} set by ckpt",
        fields.len()
    );
}

/// The parsers above, on text whose answer is known.
#[test]
fn the_parsers_read_what_they_should() {
    let proto = "message x { optional int32 a = 1; }\n\
        message criu_opts {\n\
        \trequired int32 images_dir_fd = 1 [default = -1];\n\
        \toptional string images_dir = 68; /* used only if images_dir_fd == -1 */\n\
        \trepeated criu_veth_pair veths = 19; // DEPRECATED\n\
        /*\toptional bool check_mounts = 128; */\n\
        }\n\
        message y { optional int32 b = 2; }";
    let f = criu_opts_fields(proto);
    assert_eq!(
        f.into_iter().collect::<Vec<_>>(),
        vec![
            (1, "images_dir_fd".to_string()),
            (19, "veths".to_string()),
            (68, "images_dir".to_string())
        ]
    );
    let doc = "| # | f | s | g | r | v |\n|---|---|---|---|---|---|\n\
        | 3 | `leave_running` | `ckpt_opts_set_leave_running` (and `ckpt_x`) | `LeaveRunning` | `--leave-running` | ≤ 1.6 |\n\
        | 12 | `notify_scripts` | set by ckpt: because | — | — | ≤ 1.6 |\n\
        | C setter | Go | runc | What |\n";
    let rows = table_rows(doc);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].field, "leave_running");
    assert_eq!(rows[0].setters, ["ckpt_opts_set_leave_running", "ckpt_x"]);
    assert_eq!(rows[1].setters, Vec::<String>::new());
    assert!(rows[1].setter_cell.starts_with("set by ckpt"));
    let h = header_functions();
    assert!(h.contains("ckpt_opts_set_leave_running"));
    assert!(h.contains("ckpt_error_free"));
    assert!(!h.iter().any(|n| n.starts_with("ckpt_opts_set_nonexistent")));
}
