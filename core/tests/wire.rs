//! Wire compatibility with CRIU, checked against CRIU's own definitions rather than ckpt's:
//!
//! - the `rpc.proto` that libcriu-dev 4.1.1 ships ($CKPT_RPC_PROTO), compiled by protoc into
//!   descriptors, drives a probe of every message, field and enum of `ckpt::proto`: number,
//!   type, label (optional/required/repeated), name, and proto2 presence of explicit zeros;
//! - Google's protobuf runtime (python, tests/wire/peer.py) and protoc's decoder read what ckpt
//!   encodes, and ckpt reads what they encode, field by field, in both directions;
//! - the statistics messages are checked against `stats-dump`/`stats-restore` files written by
//!   a real `criu dump`/`criu restore`, whose `--display-stats` output gives the values;
//! - a descriptor number in the request (`pidfd_store_sk`) is shown to reach real CRIU.
//!
//! protoc and python3-protobuf come from scripts/setup.sh: when missing, these tests fail.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ckpt::proto::{
    CgroupRoot, CriuCgMode, CriuDumpResp, CriuFeatures, CriuNetworkLockMethod, CriuNotify,
    CriuOpts, CriuPageServerInfo, CriuPreDumpMode, CriuReq, CriuReqType, CriuResp, CriuRestoreResp,
    CriuVersion, CriuVethPair, ExtMountMap, InheritFd, JoinNamespace, StatsEntry, UnixSk,
};
use ckpt::stats::{Key, Stats};
use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorSet};

// ---------------------------------------------------------------------------------------------
// Tools and files

fn python() -> PathBuf {
    std::env::var_os("CKPT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/bin/python3".into())
}

fn peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/wire/peer.py")
}

/// A fresh directory for one test under cargo's scratch space (target/tmp); each test removes
/// its own when it passes and leaves it for inspection when it fails.
fn workdir(tag: &str) -> PathBuf {
    let d =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("wire-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs a command that must succeed; a missing tool fails the test with what to install.
fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {:?}: {e} (scripts/setup.sh installs protoc and python3-protobuf)",
            cmd.get_program()
        )
    });
    assert!(
        out.status.success(),
        "{:?} {:?} failed ({}):\n{}{}",
        cmd.get_program(),
        cmd.get_args().collect::<Vec<_>>(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// protoc's descriptors of rpc.proto (the serialized set and its decoding), compiled once per
/// test binary.
fn descriptors() -> &'static (Vec<u8>, FileDescriptorSet) {
    static SET: OnceLock<(Vec<u8>, FileDescriptorSet)> = OnceLock::new();
    SET.get_or_init(|| {
        let proto = common::rpc_proto();
        let dir = workdir("descriptors");
        let out = dir.join("rpc.pb");
        run(Command::new("protoc")
            .arg(format!("--descriptor_set_out={}", out.display()))
            .arg("--include_imports")
            .arg(format!("-I{}", proto.parent().unwrap().display()))
            .arg(proto.file_name().unwrap()));
        let bytes = std::fs::read(&out).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let set = FileDescriptorSet::decode(bytes.as_slice())
            .expect("protoc wrote a descriptor set prost-types cannot read");
        (bytes, set)
    })
}

/// Runs tests/wire/peer.py with the descriptor set, kept in the test's directory `dir`.
fn peer(dir: &Path, args: &[&str]) -> Output {
    let set = dir.join("rpc.pb");
    if !set.exists() {
        std::fs::write(&set, &descriptors().0).unwrap();
    }
    let mut cmd = Command::new(python());
    cmd.arg(peer_script()).arg(&set).args(args);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python().display()));
    assert!(
        out.status.success(),
        "peer.py {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// protoc's own decoder (C++), as the text format it prints.
fn protoc_decode(message: &str, bytes: &[u8]) -> String {
    use std::io::Write;
    let proto = common::rpc_proto();
    let mut child = Command::new("protoc")
        .arg(format!("--decode={message}"))
        .arg(format!("-I{}", proto.parent().unwrap().display()))
        .arg(proto.file_name().unwrap())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run protoc (scripts/setup.sh installs protobuf-compiler)");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "protoc --decode={message} refused ckpt's bytes: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

// ---------------------------------------------------------------------------------------------
// A raw protobuf encoder driven by the descriptors, independent of prost's derives

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn put_key(out: &mut Vec<u8>, number: i32, wire_type: u8) {
    put_varint(out, ((number as u64) << 3) | u64::from(wire_type));
}

fn put_bytes(out: &mut Vec<u8>, number: i32, payload: &[u8]) {
    put_key(out, number, 2);
    put_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// The sample values: a wrong type on ckpt's side changes their encoding (a negative int32 is a
/// 10-byte varint, a uint32 above 2^31 is 5 bytes, a string is not bytes).
const SAMPLE_I32: i32 = -5;
const SAMPLE_U32: u32 = 0xFFFF_FFFB;
const SAMPLE_U64: u64 = (1 << 40) | 3;
const SAMPLE_STR: &str = "probe-\u{fc}";

struct Schema {
    messages: BTreeMap<String, DescriptorProto>,
    enums: BTreeMap<String, EnumDescriptorProto>,
}

impl Schema {
    fn load() -> Schema {
        let (_, set) = descriptors();
        let mut s = Schema {
            messages: BTreeMap::new(),
            enums: BTreeMap::new(),
        };
        for file in &set.file {
            assert!(
                file.package.as_deref().unwrap_or("").is_empty(),
                "rpc.proto now has a package; ckpt's names assume none"
            );
            for m in &file.message_type {
                assert!(
                    m.nested_type.is_empty() && m.enum_type.is_empty(),
                    "{}: nested types are not expected in rpc.proto",
                    m.name()
                );
                s.messages.insert(m.name().to_string(), m.clone());
            }
            for e in &file.enum_type {
                s.enums.insert(e.name().to_string(), e.clone());
            }
        }
        s
    }

    fn message(&self, f: &FieldDescriptorProto) -> &DescriptorProto {
        &self.messages[f.type_name().trim_start_matches('.')]
    }

    fn enumeration(&self, f: &FieldDescriptorProto) -> &EnumDescriptorProto {
        &self.enums[f.type_name().trim_start_matches('.')]
    }

    /// One occurrence of `f` holding its sample value.
    fn sample_field(&self, f: &FieldDescriptorProto, out: &mut Vec<u8>) {
        let n = f.number();
        match f.r#type() {
            Type::Int32 | Type::Int64 => {
                put_key(out, n, 0);
                put_varint(out, i64::from(SAMPLE_I32) as u64);
            }
            Type::Uint32 => {
                put_key(out, n, 0);
                put_varint(out, u64::from(SAMPLE_U32));
            }
            Type::Uint64 => {
                put_key(out, n, 0);
                put_varint(out, SAMPLE_U64);
            }
            Type::Bool => {
                put_key(out, n, 0);
                put_varint(out, 1);
            }
            Type::Enum => {
                let last = self.enumeration(f).value.last().unwrap().number();
                put_key(out, n, 0);
                put_varint(out, i64::from(last) as u64);
            }
            Type::String => put_bytes(out, n, SAMPLE_STR.as_bytes()),
            Type::Bytes => put_bytes(out, n, &[0xff, 0x00]),
            Type::Message => put_bytes(out, n, &self.sample_message(self.message(f))),
            other => panic!("{}: type {other:?} has no sample here", f.name()),
        }
    }

    /// Every field of `m` set to its sample (repeated ones twice), in field-number order as
    /// protobuf encoders write them.
    fn sample_message(&self, m: &DescriptorProto) -> Vec<u8> {
        let mut fields: Vec<_> = m.field.iter().collect();
        fields.sort_by_key(|f| f.number());
        let mut out = Vec::new();
        for f in fields {
            for _ in 0..occurrences(f) {
                self.sample_field(f, &mut out);
            }
        }
        out
    }
}

/// A message holding `write`'s encoding of `f` plus the sample of every other required field
/// (prost always writes required fields back), in field-number order.
fn probe(
    schema: &Schema,
    desc: &DescriptorProto,
    f: &FieldDescriptorProto,
    write: impl Fn(&mut Vec<u8>),
) -> Vec<u8> {
    let mut fields: Vec<_> = desc.field.iter().collect();
    fields.sort_by_key(|g| g.number());
    let mut out = Vec::new();
    for g in fields {
        if g.number() == f.number() {
            write(&mut out);
        } else if g.label() == Label::Required {
            schema.sample_field(g, &mut out);
        }
    }
    out
}

fn occurrences(f: &FieldDescriptorProto) -> usize {
    if f.label() == Label::Repeated { 2 } else { 1 }
}

/// The field numbers present at the top level of an encoded message.
fn top_level_numbers(mut b: &[u8]) -> Vec<i32> {
    fn varint(b: &mut &[u8]) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = b[0];
            *b = &b[1..];
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        v
    }
    let mut numbers = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b);
        numbers.push((key >> 3) as i32);
        match key & 7 {
            0 => {
                varint(&mut b);
            }
            2 => {
                let len = varint(&mut b) as usize;
                b = &b[len..];
            }
            1 => b = &b[8..],
            5 => b = &b[4..],
            w => panic!("wire type {w} in a CRIU message"),
        }
    }
    numbers
}

/// Bytes for a message, shortened: nested samples run to hundreds of bytes.
fn hex(b: &[u8]) -> String {
    const SHOWN: usize = 24;
    let head: Vec<String> = b.iter().take(SHOWN).map(|x| format!("{x:02x}")).collect();
    if b.len() > SHOWN {
        format!("[{} ... ({} bytes)]", head.join(" "), b.len())
    } else {
        format!("[{}]", head.join(" "))
    }
}

// ---------------------------------------------------------------------------------------------
// Reading prost's Debug output: the one place the derives expose field names and enum bindings

/// `Name { a: 1, b: Some("x") }` -> [("a", "1"), ("b", "Some(\"x\")")], top level only.
fn debug_fields(s: &str) -> Vec<(String, String)> {
    let (Some(open), true) = (s.find('{'), s.ends_with('}')) else {
        return Vec::new();
    };
    let body = &s[open + 1..s.len() - 1];
    let mut parts = Vec::new();
    let (mut depth, mut in_str, mut escaped, mut start) = (0i32, false, false, 0);
    for (i, c) in body.char_indices() {
        if in_str {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' | '[' | '(' => depth += 1,
            '}' | ']' | ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&body[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (name, value) = p.split_once(": ").expect("name: value");
            (name.trim_start_matches("r#").to_string(), value.to_string())
        })
        .collect()
}

/// `CgNone` -> `CG_NONE`, prost's variant naming undone.
fn upper_snake(variant: &str) -> String {
    let mut out = String::new();
    for (i, c) in variant.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

fn short_type_name<T>() -> &'static str {
    std::any::type_name::<T>().rsplit("::").next().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Probing ckpt's prost messages with the descriptors

type MessageCheck = fn(&Schema, &DescriptorProto, &mut Vec<String>);
type EnumCheck = fn(&EnumDescriptorProto, &mut Vec<String>);

/// rpc.proto's messages and enums and the ckpt::proto types that must match them.
fn rust_messages() -> Vec<(&'static str, &'static str, MessageCheck)> {
    fn entry<M: Message + Default + Debug>(
        proto: &'static str,
    ) -> (&'static str, &'static str, MessageCheck) {
        (proto, short_type_name::<M>(), check_message::<M>)
    }
    vec![
        entry::<CriuPageServerInfo>("criu_page_server_info"),
        entry::<CriuVethPair>("criu_veth_pair"),
        entry::<ExtMountMap>("ext_mount_map"),
        entry::<JoinNamespace>("join_namespace"),
        entry::<InheritFd>("inherit_fd"),
        entry::<CgroupRoot>("cgroup_root"),
        entry::<UnixSk>("unix_sk"),
        entry::<CriuOpts>("criu_opts"),
        entry::<CriuDumpResp>("criu_dump_resp"),
        entry::<CriuRestoreResp>("criu_restore_resp"),
        entry::<CriuNotify>("criu_notify"),
        entry::<CriuFeatures>("criu_features"),
        entry::<CriuReq>("criu_req"),
        entry::<CriuResp>("criu_resp"),
        entry::<CriuVersion>("criu_version"),
    ]
}

fn rust_enums() -> Vec<(&'static str, EnumCheck)> {
    vec![
        ("criu_cg_mode", check_enum::<CriuCgMode>),
        (
            "criu_network_lock_method",
            check_enum::<CriuNetworkLockMethod>,
        ),
        ("criu_pre_dump_mode", check_enum::<CriuPreDumpMode>),
        ("criu_req_type", check_enum::<CriuReqType>),
    ]
}

fn check_enum<E: TryFrom<i32> + Debug>(e: &EnumDescriptorProto, errs: &mut Vec<String>) {
    let declared: BTreeMap<i32, &str> = e.value.iter().map(|v| (v.number(), v.name())).collect();
    for (&n, &name) in &declared {
        match E::try_from(n) {
            Ok(v) if upper_snake(&format!("{v:?}")) == name => {}
            Ok(v) => errs.push(format!(
                "enum {}: {n} is {name} in rpc.proto but {v:?} in ckpt",
                e.name()
            )),
            Err(_) => errs.push(format!(
                "enum {}: {name} = {n} is missing in ckpt",
                e.name()
            )),
        }
    }
    for n in -1..=128 {
        if !declared.contains_key(&n) && E::try_from(n).is_ok() {
            errs.push(format!(
                "enum {}: ckpt has a value {n} that rpc.proto lacks",
                e.name()
            ));
        }
    }
}

/// Decodes `bytes` as `M`, re-encodes it, and returns (decoded, re-encoded).
fn round<M: Message + Default>(bytes: &[u8]) -> Result<(M, Vec<u8>), prost::DecodeError> {
    let m = M::decode(bytes)?;
    let again = m.encode_to_vec();
    Ok((m, again))
}

fn debug_value<M: Debug>(m: &M, field: &str) -> Option<String> {
    debug_fields(&format!("{m:?}"))
        .into_iter()
        .find(|(n, _)| n == field)
        .map(|(_, v)| v)
}

/// Checks one ckpt message against its descriptor, field by field.
fn check_message<M: Message + Default + Debug>(
    schema: &Schema,
    desc: &DescriptorProto,
    errs: &mut Vec<String>,
) {
    let msg = desc.name();
    let rust_names = rust_messages();

    // Names: ckpt's fields are exactly rpc.proto's.
    let theirs: BTreeSet<String> = desc.field.iter().map(|f| f.name().to_string()).collect();
    let ours: BTreeSet<String> = debug_fields(&format!("{:?}", M::default()))
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    for missing in theirs.difference(&ours) {
        let f = desc.field.iter().find(|f| f.name() == missing).unwrap();
        errs.push(format!(
            "{msg}.{missing} (= {}) is missing in ckpt",
            f.number()
        ));
    }
    for extra in ours.difference(&theirs) {
        errs.push(format!(
            "{msg}: ckpt has a field {extra} that rpc.proto lacks"
        ));
    }

    // Labels: an empty message re-encodes to exactly the required fields (prost writes a
    // required field always, an optional or repeated one only when set).
    let required: BTreeSet<i32> = desc
        .field
        .iter()
        .filter(|f| f.label() == Label::Required)
        .map(|f| f.number())
        .collect();
    match round::<M>(&[]) {
        Ok((_, bytes)) => {
            let written: BTreeSet<i32> = top_level_numbers(&bytes).into_iter().collect();
            if written != required {
                errs.push(format!(
                    "{msg}: an empty message encodes fields {written:?}; rpc.proto requires exactly {required:?}"
                ));
            }
        }
        Err(e) => errs.push(format!("{msg}: an empty message does not decode: {e}")),
    }

    // The whole message at once, every field set.
    let full = schema.sample_message(desc);
    match round::<M>(&full) {
        Ok((_, again)) if again == full => {}
        Ok(_) => errs.push(format!(
            "{msg}: a message with every field set does not survive decode and encode"
        )),
        Err(e) => errs.push(format!(
            "{msg}: a message with every field set does not decode: {e}"
        )),
    }

    for f in &desc.field {
        if !ours.contains(f.name()) {
            continue;
        }
        check_field::<M>(schema, desc, f, &rust_names, errs);
    }
}

fn check_field<M: Message + Default + Debug>(
    schema: &Schema,
    desc: &DescriptorProto,
    f: &FieldDescriptorProto,
    rust_names: &[(&'static str, &'static str, MessageCheck)],
    errs: &mut Vec<String>,
) {
    let at = format!(
        "{}.{} (= {}, {:?} {:?})",
        desc.name(),
        f.name(),
        f.number(),
        f.label(),
        f.r#type()
    );
    let n = f.number();

    // Number and type: the sample comes back byte for byte. prost drops a field it does not
    // know under this number, refuses a wrong wire type, and re-encodes a same-wire-type
    // mismatch (int32/uint32/bool) differently.
    let bytes = probe(schema, desc, f, |out| {
        for _ in 0..occurrences(f) {
            schema.sample_field(f, out);
        }
    });
    let decoded = match round::<M>(&bytes) {
        Ok((m, again)) => {
            if again != bytes {
                errs.push(format!(
                    "{at}: sample {} came back as {} (unknown number or wrong type in ckpt)",
                    hex(&bytes),
                    hex(&again)
                ));
            }
            m
        }
        Err(e) => {
            errs.push(format!("{at}: sample does not decode: {e}"));
            return;
        }
    };

    // Type and label as ckpt declares them, read back from the derive's Debug output.
    let one = match f.r#type() {
        Type::Int32 | Type::Int64 => SAMPLE_I32.to_string(),
        Type::Uint32 => SAMPLE_U32.to_string(),
        Type::Uint64 => SAMPLE_U64.to_string(),
        Type::Bool => "true".into(),
        // The request messages hold CRIU's strings as bytes (CRIU never checks UTF-8 and
        // paths need not be UTF-8): the same wire, shown as the sample's bytes.
        Type::String => {
            let bytes = format!("{:?}", SAMPLE_STR.as_bytes());
            let shown = debug_value(&decoded, f.name()).unwrap_or_default();
            if shown.contains(&bytes) {
                bytes
            } else {
                format!("{SAMPLE_STR:?}")
            }
        }
        Type::Bytes => "[255, 0]".into(),
        Type::Enum => {
            let v = schema.enumeration(f).value.last().unwrap();
            // The variant's Debug name, checked against the enum value name below.
            let shown = debug_value(&decoded, f.name()).unwrap_or_default();
            let inner = shown
                .trim_start_matches("Some(")
                .trim_start_matches('[')
                .split([',', ')', ']'])
                .next()
                .unwrap_or("")
                .to_string();
            if upper_snake(&inner) != v.name() {
                errs.push(format!(
                    "{at}: value {} shows as {shown} in ckpt, not as enum {} {}",
                    v.number(),
                    f.type_name(),
                    v.name()
                ));
            }
            inner
        }
        Type::Message => {
            let want = f.type_name().trim_start_matches('.');
            match rust_names.iter().find(|(p, _, _)| *p == want) {
                Some((_, rust, _)) => format!("{rust} {{"),
                None => {
                    errs.push(format!("{at}: no ckpt type for message {want}"));
                    return;
                }
            }
        }
        other => {
            errs.push(format!("{at}: type {other:?} not handled by this test"));
            return;
        }
    };
    let shown = debug_value(&decoded, f.name()).unwrap_or_default();
    let shape_ok = match f.label() {
        Label::Optional => shown.starts_with(&format!("Some({one}")),
        Label::Repeated => {
            shown.starts_with(&format!("[{one}")) && shown.matches(&one).count() == 2
        }
        Label::Required => shown.starts_with(&one),
    };
    if !shape_ok {
        errs.push(format!(
            "{at}: ckpt shows the sample as `{shown}`, expected {:?} `{one}`",
            f.label()
        ));
    }

    // Every enum value, one at a time, bound to the right variant.
    if f.r#type() == Type::Enum {
        for v in &schema.enumeration(f).value {
            let b = probe(schema, desc, f, |out| {
                put_key(out, n, 0);
                put_varint(out, i64::from(v.number()) as u64);
            });
            match round::<M>(&b) {
                Ok((m, again)) => {
                    let shown = debug_value(&m, f.name()).unwrap_or_default();
                    let variant = shown
                        .trim_start_matches("Some(")
                        .trim_start_matches('[')
                        .trim_end_matches([')', ']']);
                    if again != b || upper_snake(variant) != v.name() {
                        errs.push(format!(
                            "{at}: {} (= {}) comes back as {}, shown as {shown}",
                            v.name(),
                            v.number(),
                            hex(&again)
                        ));
                    }
                }
                Err(e) => errs.push(format!("{at}: {} does not decode: {e}", v.name())),
            }
        }
    }

    // An integer field holding 1 shows as 1, not as the variant 1 of some enum.
    if matches!(
        f.r#type(),
        Type::Int32 | Type::Uint32 | Type::Int64 | Type::Uint64
    ) {
        let b = probe(schema, desc, f, |out| {
            put_key(out, n, 0);
            put_varint(out, 1);
        });
        let shown = round::<M>(&b)
            .map(|(m, _)| debug_value(&m, f.name()).unwrap_or_default())
            .unwrap_or_default();
        if !matches!(shown.as_str(), "1" | "Some(1)" | "[1]") {
            errs.push(format!(
                "{at}: 1 shows as {shown} in ckpt, not as an integer"
            ));
        }
    }

    // A bool normalises any non-zero varint to 1; an integer would keep the 2.
    if f.r#type() == Type::Bool {
        let with = |v: u64| {
            probe(schema, desc, f, |out| {
                put_key(out, n, 0);
                put_varint(out, v);
            })
        };
        let (two, one) = (with(2), with(1));
        if round::<M>(&two).map(|(_, again)| again).ok() != Some(one) {
            errs.push(format!("{at}: ckpt does not hold this field as a bool"));
        }
    }

    // proto2 presence: an explicit zero, false or "" of an optional field stays on the wire.
    if f.label() == Label::Optional && f.r#type() != Type::Message {
        let zero = probe(schema, desc, f, |out| {
            if matches!(f.r#type(), Type::String | Type::Bytes) {
                put_bytes(out, n, &[]);
            } else {
                put_key(out, n, 0);
                put_varint(out, 0);
            }
        });
        match round::<M>(&zero) {
            Ok((_, again)) if again == zero => {}
            Ok((_, again)) => errs.push(format!(
                "{at}: an explicit zero is not kept (came back as {}); proto2 needs presence",
                hex(&again)
            )),
            Err(e) => errs.push(format!("{at}: an explicit zero does not decode: {e}")),
        }
    }
}

#[test]
fn every_message_field_and_enum_matches_criu_rpc_proto() {
    let schema = Schema::load();
    let mut errs = Vec::new();
    let messages = rust_messages();
    let enums = rust_enums();
    for name in schema.messages.keys() {
        if !messages.iter().any(|(p, _, _)| p == name) {
            errs.push(format!("message {name} of rpc.proto has no ckpt type"));
        }
    }
    for name in schema.enums.keys() {
        if !enums.iter().any(|(p, _)| p == name) {
            errs.push(format!("enum {name} of rpc.proto has no ckpt type"));
        }
    }
    let mut fields = 0;
    for (proto, _, check) in &messages {
        match schema.messages.get(*proto) {
            Some(desc) => {
                fields += desc.field.len();
                check(&schema, desc, &mut errs);
            }
            None => errs.push(format!("ckpt has {proto}, which rpc.proto lacks")),
        }
    }
    for (proto, check) in &enums {
        match schema.enums.get(*proto) {
            Some(desc) => check(desc, &mut errs),
            None => errs.push(format!("ckpt has enum {proto}, which rpc.proto lacks")),
        }
    }
    assert!(
        errs.is_empty(),
        "ckpt::proto differs from {}:\n  {}",
        common::rpc_proto().display(),
        errs.join("\n  ")
    );
    println!(
        "checked {} messages ({fields} fields) and {} enums against {}",
        messages.len(),
        enums.len(),
        common::rpc_proto().display()
    );
}

// ---------------------------------------------------------------------------------------------
// Both directions through Google's protobuf runtime and protoc

/// python encodes every field; ckpt decodes and re-encodes; python and protoc compare.
fn python_round_trip<M: Message + Default>(message: &str, check: impl Fn(&M, bool)) {
    let dir = workdir(&format!("peer-{message}"));
    let full = dir.join("python-full.bin");
    let zero = dir.join("python-zero.bin");
    peer(
        &dir,
        &[
            "sample",
            message,
            full.to_str().unwrap(),
            zero.to_str().unwrap(),
        ],
    );
    for (python_file, is_zero) in [(full, false), (zero, true)] {
        let bytes = std::fs::read(&python_file).unwrap();
        let m = M::decode(bytes.as_slice())
            .unwrap_or_else(|e| panic!("ckpt cannot decode python's {message}: {e}"));
        check(&m, is_zero);
        let ours = m.encode_to_vec();
        let ours_file = dir.join(format!(
            "ckpt-{}",
            python_file.file_name().unwrap().to_str().unwrap()
        ));
        std::fs::write(&ours_file, &ours).unwrap();
        let out = peer(
            &dir,
            &[
                "same",
                message,
                python_file.to_str().unwrap(),
                ours_file.to_str().unwrap(),
            ],
        );
        print!(
            "{message} ({}): {}",
            if is_zero { "zeros" } else { "values" },
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(
            protoc_decode(message, &bytes),
            protoc_decode(message, &ours),
            "protoc reads python's and ckpt's {message} differently"
        );
        assert!(
            ours == bytes,
            "ckpt re-encodes python's {message} to other bytes"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn python_encoded_criu_req_round_trips_through_ckpt() {
    python_round_trip::<CriuReq>("criu_req", |req, zero| {
        let o = req.opts.as_ref().expect("opts");
        if zero {
            // proto2: explicit zeros arrive as set values, not as "unset".
            assert_eq!(o.manage_cgroups_mode, Some(CriuCgMode::Ignore as i32));
            assert_eq!(o.leave_running, Some(false));
            assert_eq!(o.pid, Some(0));
            assert_eq!(o.log_file.as_deref(), Some(&b""[..]));
            assert_eq!(req.r#type, CriuReqType::Empty as i32);
        } else {
            assert!(o.pid.unwrap() < 0, "negative int32 survives");
            assert!(
                o.cpu_cap.unwrap() > 0x8000_0000,
                "uint32 above 2^31 survives"
            );
            assert_eq!(o.external.len(), 2);
            assert_eq!(o.inherit_fd.len(), 2);
            let address = o.ps.as_ref().unwrap().address.as_ref().unwrap();
            assert!(String::from_utf8_lossy(address).contains('\u{fc}'));
        }
    });
}

#[test]
fn python_encoded_criu_resp_round_trips_through_ckpt() {
    python_round_trip::<CriuResp>("criu_resp", |resp, zero| {
        if zero {
            assert!(!resp.success);
            assert_eq!(resp.cr_errno, Some(0));
            assert_eq!(resp.restore.as_ref().map(|r| r.pid), Some(0));
        } else {
            assert!(resp.cr_errno.unwrap() < 0);
            assert!(resp.cr_errmsg.as_ref().unwrap().starts_with("cr_errmsg-"));
            assert!(resp.version.as_ref().unwrap().major_number < 0);
            assert!(resp.notify.as_ref().unwrap().script.is_some());
        }
    });
}

/// ckpt encodes a request as runc would send it; protoc and python print what they read.
fn decoded_by_both(req: &CriuReq) -> String {
    let bytes = req.encode_to_vec();
    let dir = workdir("ckpt-req");
    let file = dir.join("req.bin");
    std::fs::write(&file, &bytes).unwrap();
    let by_protoc = protoc_decode("criu_req", &bytes);
    let by_python =
        String::from_utf8(peer(&dir, &["text", "criu_req", file.to_str().unwrap()]).stdout)
            .unwrap();
    assert_eq!(
        by_protoc, by_python,
        "protoc and python read ckpt's request differently"
    );
    let _ = std::fs::remove_dir_all(&dir);
    by_protoc
}

#[test]
fn ckpt_encoded_requests_read_by_protoc_and_python() {
    // A runc-like dump: explicit false values, IGNORE (0) as the cgroup mode, nested and
    // repeated messages, an enum above zero.
    let dump = CriuReq {
        r#type: CriuReqType::Dump as i32,
        opts: Some(CriuOpts {
            images_dir_fd: 5,
            pid: Some(1234),
            leave_running: Some(false),
            ext_unix_sk: Some(true),
            tcp_established: Some(true),
            shell_job: Some(false),
            file_locks: Some(true),
            log_level: Some(4),
            log_file: Some("dump.log".into()),
            ps: Some(CriuPageServerInfo {
                address: Some("127.0.0.1".into()),
                port: Some(27277),
                pid: None,
                fd: None,
            }),
            notify_scripts: Some(true),
            work_dir_fd: Some(6),
            ext_mnt: vec![ExtMountMap {
                key: "/etc/hosts".into(),
                val: "/etc/hosts".into(),
            }],
            manage_cgroups_mode: Some(CriuCgMode::Ignore as i32),
            external: vec!["net[4026531992]:extRootNetNS".into(), "mnt[/x]:y".into()],
            empty_ns: Some(0x4000_0000),
            freeze_cgroup: Some("/sys/fs/cgroup/freezer/ct".into()),
            network_lock: Some(CriuNetworkLockMethod::Nftables as i32),
            ..Default::default()
        }),
        notify_success: Some(true),
        ..Default::default()
    };
    let want = r#"type: DUMP
opts {
  images_dir_fd: 5
  pid: 1234
  leave_running: false
  ext_unix_sk: true
  tcp_established: true
  shell_job: false
  file_locks: true
  log_level: 4
  log_file: "dump.log"
  ps {
    address: "127.0.0.1"
    port: 27277
  }
  notify_scripts: true
  work_dir_fd: 6
  ext_mnt {
    key: "/etc/hosts"
    val: "/etc/hosts"
  }
  manage_cgroups_mode: IGNORE
  external: "net[4026531992]:extRootNetNS"
  external: "mnt[/x]:y"
  empty_ns: 1073741824
  freeze_cgroup: "/sys/fs/cgroup/freezer/ct"
  network_lock: NFTABLES
}
notify_success: true
"#;
    assert_eq!(decoded_by_both(&dump), want);

    // Unset is absent: only the required fields and what was set appear.
    let minimal = CriuReq {
        r#type: CriuReqType::Version as i32,
        opts: Some(CriuOpts {
            images_dir_fd: -1,
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        decoded_by_both(&minimal),
        "type: VERSION\nopts {\n  images_dir_fd: -1\n}\n"
    );

    // A restore with the swrk-only fields, join_ns, cg_root, inherit_fd, and the features query.
    let restore = CriuReq {
        r#type: CriuReqType::Restore as i32,
        opts: Some(CriuOpts {
            images_dir_fd: 7,
            rst_sibling: Some(true),
            inherit_fd: vec![InheritFd {
                key: "pipe:[123]".into(),
                fd: 4,
            }],
            cg_root: vec![CgroupRoot {
                ctrl: None,
                path: "/ct".into(),
            }],
            join_ns: vec![JoinNamespace {
                ns: "net".into(),
                ns_file: "/proc/1/ns/net".into(),
                extra_opt: None,
            }],
            orphan_pts_master: Some(true),
            tcp_close: Some(true),
            lsm_profile: Some("apparmor:p".into()),
            lsm_mount_context: Some("system_u:object_r:c".into()),
            pre_dump_mode: Some(CriuPreDumpMode::VmRead as i32),
            ..Default::default()
        }),
        features: Some(CriuFeatures {
            mem_track: Some(false),
            lazy_pages: Some(true),
            pidfd_store: None,
        }),
        pid: Some(0),
        ..Default::default()
    };
    assert_eq!(
        decoded_by_both(&restore),
        r#"type: RESTORE
opts {
  images_dir_fd: 7
  cg_root {
    path: "/ct"
  }
  rst_sibling: true
  inherit_fd {
    key: "pipe:[123]"
    fd: 4
  }
  join_ns {
    ns: "net"
    ns_file: "/proc/1/ns/net"
  }
  orphan_pts_master: true
  tcp_close: true
  lsm_profile: "apparmor:p"
  pre_dump_mode: VM_READ
  lsm_mount_context: "system_u:object_r:c"
}
features {
  mem_track: false
  lazy_pages: true
}
pid: 0
"#
    );
}

// ---------------------------------------------------------------------------------------------
// Statistics: ckpt's stats messages against files a real CRIU wrote

fn criu() -> PathBuf {
    std::env::var_os("CKPT_CRIU")
        .map(PathBuf::from)
        .unwrap_or_else(|| "criu".into())
}

/// `Label: 123 us` / `Label: 45 (0x2d)` lines of `--display-stats`, by label.
fn displayed(stdout: &str) -> BTreeMap<String, u64> {
    stdout
        .lines()
        .filter_map(|l| {
            let (label, rest) = l.split_once(": ")?;
            let n = rest.split_whitespace().next()?.parse().ok()?;
            Some((label.to_string(), n))
        })
        .collect()
}

/// The one stats entry of a CRIU image file: two magic words, a u32 length, the message.
/// Decoding and re-encoding it with ckpt's structs must give CRIU's bytes back: prost drops
/// fields it does not know, so any field or type ckpt lacks shows up here.
fn check_stats_file(path: &Path) {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(raw.len() > 12, "{} is too short", path.display());
    let len = u32::from_le_bytes(raw[8..12].try_into().unwrap()) as usize;
    assert_eq!(
        12 + len,
        raw.len(),
        "{}: one entry expected",
        path.display()
    );
    let body = &raw[12..];
    let entry = StatsEntry::decode(body).expect("ckpt cannot decode CRIU's stats entry");
    assert_eq!(
        entry.encode_to_vec(),
        body,
        "{}: CRIU wrote fields ckpt's StatsEntry does not hold as written ({entry:?})",
        path.display()
    );
}

fn expect_stat(s: &Stats, key: Key, shown: &BTreeMap<String, u64>, label: &str) {
    let want = *shown
        .get(label)
        .unwrap_or_else(|| panic!("criu --display-stats printed no {label:?}: {shown:?}"));
    assert_eq!(s.get(key), Some(want), "{key:?} against CRIU's {label:?}");
}

fn pid_is_free(pid: i32) -> bool {
    use nix::errno::Errno;
    use nix::sys::signal::killpg;
    use nix::unistd::Pid;
    // The pid stays taken while it names a process, a process group or a session.
    !Path::new(&format!("/proc/{pid}")).exists()
        && killpg(Pid::from_raw(pid), None) == Err(Errno::ESRCH)
}

/// A shell loop in its own session (CRIU dumps a session leader without --shell-job), with
/// none of the harness's descriptors, given time to start.
fn spawn_loop() -> std::process::Child {
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", "i=0; while :; do i=$((i+1)); sleep 0.05; done"])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid and close_range are async-signal-safe system calls.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            libc::close_range(3, u32::MAX, 0);
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    child
}

#[test]
fn stats_match_a_real_criu_dump_and_restore() {
    if !common::criu_allowed("stats_match_a_real_criu_dump_and_restore") {
        return;
    }
    let dir = workdir("stats");
    let images = dir.join("images");
    std::fs::create_dir(&images).unwrap();
    let mut child = spawn_loop();
    let pid = child.id() as i32;

    let dump = Command::new(criu())
        .args([
            "dump",
            "-t",
            &pid.to_string(),
            "--display-stats",
            "-v4",
            "-o",
            "dump.log",
            "-D",
        ])
        .arg(&images)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", criu().display()));
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        dump.status.success(),
        "criu dump failed; see {}",
        images.join("dump.log").display()
    );
    let shown = displayed(&String::from_utf8_lossy(&dump.stdout));
    check_stats_file(&images.join("stats-dump"));
    let s = ckpt::stats::read(&images, false).expect("ckpt reads stats-dump");
    for (key, label) in [
        (Key::FreezingTimeUs, "Freezing time"),
        (Key::FrozenTimeUs, "Frozen time"),
        (Key::MemdumpTimeUs, "Memory dump time"),
        (Key::MemwriteTimeUs, "Memory write time"),
        (Key::IrmapResolveUs, "IRMAP resolve time"),
        (Key::PagesScanned, "Memory pages scanned"),
        (Key::PagesSkippedParent, "Memory pages skipped from parent"),
        (Key::PagesWritten, "Memory pages written"),
        (Key::PagesLazy, "Lazy memory pages"),
    ] {
        expect_stat(&s, key, &shown, label);
    }
    // CRIU 4.1 always writes these too, without printing them.
    for key in [
        Key::PagePipes,
        Key::PagePipeBufs,
        Key::ShpagesScanned,
        Key::ShpagesSkippedParent,
        Key::ShpagesWritten,
    ] {
        assert!(s.get(key).is_some(), "{key:?} missing from ckpt's stats");
    }
    assert!(s.get(Key::PagesWritten).unwrap() > 0);
    println!("stats-dump: {:?}", s.values);

    // The dumped tree was killed; its pid is free once its group and session are gone too.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pid_is_free(pid) {
        assert!(
            Instant::now() < deadline,
            "pid {pid} still taken after the dump"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pidfile = dir.join("restored.pid");
    let restore = Command::new(criu())
        .args([
            "restore",
            "-d",
            "--display-stats",
            "-v4",
            "-o",
            "restore.log",
            "-D",
        ])
        .arg(&images)
        .arg("--pidfile")
        .arg(&pidfile)
        .output()
        .unwrap();
    if let Ok(p) = std::fs::read_to_string(&pidfile) {
        let p: i32 = p.trim().parse().unwrap();
        // The restored tree is its own session and process group: kill all of it.
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(p), nix::sys::signal::SIGKILL);
    }
    assert!(
        restore.status.success(),
        "criu restore failed; see {}",
        images.join("restore.log").display()
    );
    let shown = displayed(&String::from_utf8_lossy(&restore.stdout));
    check_stats_file(&images.join("stats-restore"));
    let s = ckpt::stats::read(&images, true).expect("ckpt reads stats-restore");
    for (key, label) in [
        (Key::PagesCompared, "Pages compared"),
        (Key::PagesSkippedCow, "Pages skipped COW"),
        (Key::PagesRestored, "Pages restored"),
        (Key::RestoreTimeUs, "Restore time"),
        (Key::ForkingTimeUs, "Forking time"),
    ] {
        expect_stat(&s, key, &shown, label);
    }
    println!("stats-restore: {:?}", s.values);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// The probe itself must catch a wrong struct; these are wrong on purpose.

mod wrong {
    /// criu_page_server_info with: address repeated, port as uint32, pid missing, fd repeated.
    /// (Bytes for a string is no mismatch: ckpt's requests hold CRIU's strings as bytes.)
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PageServerInfo {
        #[prost(string, repeated, tag = "1")]
        pub address: Vec<String>,
        #[prost(uint32, optional, tag = "2")]
        pub port: Option<u32>,
        #[prost(int32, repeated, tag = "4")]
        pub fd: Vec<i32>,
    }

    /// inherit_fd with: key optional instead of required, fd under number 3, an extra field.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct InheritFd {
        #[prost(string, optional, tag = "1")]
        pub key: Option<String>,
        #[prost(int32, required, tag = "3")]
        pub fd: i32,
        #[prost(bool, optional, tag = "9")]
        pub extra: Option<bool>,
    }

    /// criu_notify with: pid bound to an enum, script without presence (proto3-like, so an
    /// explicit "" vanishes).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Notify {
        #[prost(string, tag = "1")]
        pub script: String,
        #[prost(enumeration = "super::CriuCgMode", optional, tag = "2")]
        pub pid: Option<i32>,
    }

    /// criu_features with a bool held as an int32.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Features {
        #[prost(int32, optional, tag = "1")]
        pub mem_track: Option<i32>,
        #[prost(bool, optional, tag = "2")]
        pub lazy_pages: Option<bool>,
        #[prost(bool, optional, tag = "3")]
        pub pidfd_store: Option<bool>,
    }

    /// criu_pre_dump_mode without VM_READ, with an extra value.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum PreDumpMode {
        Splice = 1,
        Mmap = 3,
    }
}

#[test]
fn the_probe_reports_each_kind_of_mismatch() {
    let schema = Schema::load();
    let mut errs = Vec::new();
    check_message::<wrong::PageServerInfo>(
        &schema,
        &schema.messages["criu_page_server_info"],
        &mut errs,
    );
    check_message::<wrong::InheritFd>(&schema, &schema.messages["inherit_fd"], &mut errs);
    check_message::<wrong::Notify>(&schema, &schema.messages["criu_notify"], &mut errs);
    check_message::<wrong::Features>(&schema, &schema.messages["criu_features"], &mut errs);
    check_enum::<wrong::PreDumpMode>(&schema.enums["criu_pre_dump_mode"], &mut errs);
    let all = errs.join("\n");
    println!("{all}");
    for expected in [
        "criu_page_server_info.pid (= 3) is missing in ckpt",
        "criu_page_server_info.address (= 1, Optional String): ckpt shows the sample as",
        "criu_page_server_info.port (= 2, Optional Int32): sample",
        "criu_page_server_info.fd (= 4, Optional Int32): ckpt shows the sample as `[-5]`",
        "inherit_fd: an empty message encodes fields {3}; rpc.proto requires exactly {1, 2}",
        "inherit_fd: ckpt has a field extra that rpc.proto lacks",
        "inherit_fd.fd (= 2, Required Int32): sample",
        "criu_notify.script (= 1, Optional String): an explicit zero is not kept",
        "criu_notify.pid (= 2, Optional Int32): 1 shows as Some(CgNone) in ckpt",
        "criu_features.mem_track (= 1, Optional Bool): ckpt does not hold this field as a bool",
        "enum criu_pre_dump_mode: VM_READ = 2 is missing in ckpt",
        "enum criu_pre_dump_mode: ckpt has a value 3 that rpc.proto lacks",
    ] {
        assert!(
            all.contains(expected),
            "the probe missed: {expected}\nit reported:\n{all}"
        );
    }
}
