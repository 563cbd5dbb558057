#!/usr/bin/env bash
# Runs libcriu/tests/c/table.c against the real libcriu.so.2 4.1.1 and against this library, and
# checks each case's line against the table below: what libcriu prints, what this library
# prints, and, where the two differ, why (each such row is a deliberate difference listed in
# docs/libcriu.md). It fails when either library prints something else than its column says,
# or when the columns differ without a reason.
# usage: table.sh TABLE_BINARY OUR_LIB_DIR REAL_LIB_DIR SCRATCH
set -uo pipefail
bin=$1 ours=$2 real=$3 scratch=$4

# case | libcriu 4.1.1 | here | why they differ (empty: they must not)
expected=$(
    cat <<'EOF'
log_slash | set=0 ret=-EBADE errno=EBADRQC untouched=1 | set=-EINVAL ret=-EBADE errno=EBADRQC untouched=1 | the setter also says at once that CRIU will refuse the name
log_empty | set=0 ret=-EBADE errno=EBADRQC untouched=1 | set=-EINVAL ret=-EBADE errno=EBADRQC untouched=1 | the setter also says at once that CRIU will refuse the name
selfdump_refused | set=0 ret=-EBADE errno=EBADRQC survived=1 | set=-EINVAL ret=-EBADE errno=EBADRQC survived=1 | the setter also says at once that CRIU will refuse the name
cgmode_42 | ret=-EBADE errno=EBADRQC untouched=1 | ret=-EBADE errno=EBADRQC untouched=1 |
log_nonutf8 | set=0 ret=0 errno=0 log=1 | set=0 ret=0 errno=0 log=1 |
feature_null | ret=-1 errno=0 | ret=-1 errno=EINVAL | errno says why instead of 0
feature_big | ret=-1 errno=0 untouched=1 | ret=-1 errno=EINVAL untouched=1 | errno says why instead of 0
missing_binary | ret=-ECOMM errno=EINVAL | ret=-ECOMM errno=ENOENT | errno names the cause (libcriu's is left over from elsewhere)
service_fd_closed | ret=-ECOMM errno=EINVAL | ret=-ECOMM errno=EBADF | errno names the cause (libcriu's is left over from elsewhere)
network_lock_7 | ret=-1 | ret=-1 |
pre_dump_mode_9 | ret=-1 | ret=-1 |
inherit_closed | ret=0 | ret=0 |
notify_abort | ret=-42 errno=0 untouched=1 | ret=-42 errno=ECANCELED untouched=1 | errno says the callback cancelled the operation
pre_dump_nomem | ret=-EBADE errno=0 untouched=1 | ret=-EBADE errno=EOPNOTSUPP untouched=1 | refused after a feature check instead of reaching a CRIU BUG; errno says why
sigchld_ignored | ret=-EBADE errno=0 untouched=1 | ret=0 errno=0 untouched=1 | criu is spawned with SIGCHLD at its default, so a caller ignoring SIGCHLD still dumps
sigchld_ignored_restore_child | ret=-EBADE errno=0 counts=0 | ret=pid errno=0 counts=1 | criu is spawned with SIGCHLD at its default, so a caller ignoring SIGCHLD still restores
signals_kept | ret=0 errno=0 untouched=1 | ret=0 errno=0 untouched=1 |
dump_iters | ret=-EBADE errno=0 more_calls=0 untouched=1 | ret=-EBADE errno=EOPNOTSUPP more_calls=0 untouched=1 | refused after a feature check instead of reaching a CRIU BUG; errno says why
two_handles | a=0 b=0 logs=1 | a=0 b=0 logs=1 |
service_fd_service | version=criu's ret=0 errno=0 untouched=1 | version=criu's ret=0 errno=0 untouched=1 |
restore_child_notify | ret=pid errno=0 child=1 counts=1 notified=pre-restore,post-restore:pid,pre-resume,post-resume | ret=pid errno=0 child=1 counts=1 notified=pre-restore,post-restore:pid,pre-resume,post-resume |
exec_cmd_none | set=0 ret=pid errno=0 counts=1 | set=0 ret=pid errno=0 counts=1 |
exec_cmd_empty_arg | set=0 ret=pid errno=0 counts=1 | set=0 ret=pid errno=0 counts=1 |
empty_accepted | sets=14 dump_failed=none untouched=1 | sets=14 dump_failed=none untouched=1 |
restore_fails_late | ret=7 errno=0 tree_runs=1 | ret=7 errno=ECANCELED tree_runs=0 | the tree a failed criu_restore made is killed, not left running unreported
fd_full | version=-ECONNREFUSED/0 check=-ECONNREFUSED/0 restore_child=-1/EMFILE | version=-ECONNREFUSED/EMFILE check=-ECONNREFUSED/EMFILE restore_child=-1/EMFILE | errno names the cause (libcriu resets it to 0 before the failing call)
service_fd_twice | first=criu's ret=-ECOMM errno=EINVAL | first=criu's ret=-ECOMM errno=EBADF | errno names the cause (libcriu's is left over from elsewhere)
service_fd_negative | ret=-ECONNREFUSED errno=0 | ret=-ECONNREFUSED errno=EBADF | errno names the cause instead of 0
join_ns_null | set=-1,-1 ret=0 errno=0 untouched=1 | set=-1,-1 ret=0 errno=0 untouched=1 |
notify_positive | ret=5 untouched=1 | ret=5 untouched=1 |
notify_null_cb | ret=0 errno=0 untouched=1 | ret=0 errno=0 untouched=1 |
notify_swap | to_other=0,1:pre-dump,2:query-ext-files,2:post-dump to_null=0,1:pre-dump | to_other=0,1:pre-dump,2:query-ext-files,2:post-dump to_null=0,1:pre-dump |
binary_empty | set=0 ret=-ECOMM errno=EINVAL | set=-EINVAL ret=-ECOMM errno=EINVAL | the setter also says at once that no criu can be started from the name
address_long | set=0 ret=-ECONNREFUSED errno=0 | set=-EINVAL ret=-ECONNREFUSED errno=EINVAL | the setter also says at once that the address does not fit a socket address; errno says why
dump_iters_args | nopid=-EINVAL/0 nocb=-EINVAL/0 more_calls=0 | nopid=-EINVAL/EINVAL nocb=-EINVAL/EINVAL more_calls=0 | errno says why instead of 0
irmap_null_opts | ret=-1 | ret=-1 |
versions | version=criu's local=same at_least_it=1,1 newer=0,0 zero=1 unreachable=-ECOMM | version=criu's local=same at_least_it=1,1 newer=0,0 zero=1 unreachable=-ECOMM |
feature_all | ret=0 errno=0 as_criu_check=111 none=0/000 | ret=0 errno=0 as_criu_check=111 none=0/000 |
orphan_none | fd=-1 | fd=-1 |
pidfd_store | ret=0 errno=0 untouched=1 bad_sk=-EBADE/EBADRQC | ret=0 errno=0 untouched=1 bad_sk=-EBADE/EBADRQC |
restore_child_service | set=0 ret=pid errno=0 counts=1 | set=-EINVAL ret=pid errno=0 counts=1 | the setter also says at once that the address does not fit a socket address
wire_setters | global=0/345/41b7b760c1c307e5 local=same | global=0/345/41b7b760c1c307e5 local=same |
restore_after_child | child=pid/1 restore=pid/0 callers_child=1 | child=pid/1 restore=pid/0 callers_child=0 | criu_restore_child leaves no rst_sibling behind in the caller's options: a later criu_restore makes criu's child, as criu.h says, not an unexpected child of the caller
wire_requests | dump_defaults=0/16/b51f775d4f40ba8a version=pos/14/cc1d8d1fd041ea0d features=0/20/7d89721b0f92f8ba notify_ack=0/21/9bfdc94cb74e5ece notify_refused=-ESRCH/21/9bfdca4cb74e6081 restore=pos/14/9b2840a1b9689b69 | dump_defaults=0/16/b51f775d4f40ba8a version=pos/14/cc1d8d1fd041ea0d features=0/20/7d89721b0f92f8ba notify_ack=0/21/9bfdc94cb74e5ece notify_refused=-ESRCH/21/9bfdca4cb74e6081 restore=pos/14/9b2840a1b9689b69 |
service_fd_early | bad_pid=-EBADE/closed=1/criu_exited=1 refused_log=-EBADE/closed=1/criu_exited=1 iters_args=-EINVAL feature_null=-1 then_version=criu's after=pos/closed=1/criu_exited=1 | bad_pid=-EINVAL/closed=1/criu_exited=1 refused_log=-EBADE/closed=1/criu_exited=1 iters_args=-EINVAL feature_null=-1 then_version=criu's after=pos/closed=1/criu_exited=1 | a thread that is not a process is refused before criu starts (docs: bad-pids); the fd is closed all the same, as libcriu's connect-then-fail does
EOF
)

trim() { sed 's/^ *//; s/ *$//' <<<"$1"; }
run() { env LD_LIBRARY_PATH="$1" LIBCRIU_TEST_DIR="$scratch" timeout 600 "$bin" 2>/dev/null | grep '^CASE '; }
real_out=$(run "$real")
ours_out=$(run "$ours")

passed=0 failed=0
check() {
    local what=$1 got=$2 want=$3 name=$4
    if [ "$got" = "$want" ]; then
        passed=$((passed + 1))
        echo "ok   - $name, $what: $got"
    else
        failed=$((failed + 1))
        echo "FAIL - $name, $what: got '$got', the table says '$want'"
    fi
}
while IFS='|' read -r name lib here why; do
    name=$(trim "$name") lib=$(trim "$lib") here=$(trim "$here") why=$(trim "$why")
    r=$(sed -n "s/^CASE $name //p" <<<"$real_out")
    o=$(sed -n "s/^CASE $name //p" <<<"$ours_out")
    check "real libcriu" "$r" "$lib" "$name"
    check "this library" "$o" "$here" "$name"
    if [ "$lib" != "$here" ] && [ -z "$why" ]; then
        failed=$((failed + 1))
        echo "FAIL - $name: the libraries differ and the table gives no reason"
    elif [ "$lib" = "$here" ] && [ -n "$why" ]; then
        failed=$((failed + 1))
        echo "FAIL - $name: a reason is given for a difference there is not"
    elif [ -n "$why" ]; then
        echo "       deliberate difference: $why"
    fi
done <<<"$expected"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
