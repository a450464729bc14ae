#!/usr/bin/env bash
# Read and write syscalls per call on each side of one bench point (issue 29, bench/results/writes-per-call.md):
# runs the point for 6 s through dist/bench/run.js and counts, with perf's syscall tracepoints, each
# process's write/read/writev/epoll_pwait calls over 3 s in its middle, divided by the calls made then.
# Needs perf and a built dist/ (npx tsc -p tsconfig.build.json). Run it under the bench lock.
#   bash bench/syscalls-per-call.sh <transport> <payload> <inflight> [auto|apart]
set -euo pipefail
cd "$(dirname "$0")/.."
t=$1; p=$2; n=$3; pl=${4:-apart}
node dist/bench/run.js --transports $t --payloads $p --inflight $n --runs 1 --seconds 6 --warmup 0.5 --placements $pl --out scratch-syscalls > /tmp/sys-run.log 2>&1 &
sleep 2.5
spid=$(pgrep -f "server-main.js $t" | head -1); cpid=$(pgrep -f "client-main.js $t" | head -1)
perf stat -e syscalls:sys_enter_write,syscalls:sys_enter_read,syscalls:sys_enter_writev,syscalls:sys_enter_epoll_pwait -p $spid -o /tmp/sys-s.txt -- sleep 3 &
perf stat -e syscalls:sys_enter_write,syscalls:sys_enter_read,syscalls:sys_enter_writev,syscalls:sys_enter_epoll_pwait -p $cpid -o /tmp/sys-c.txt -- sleep 3 &
wait
rps=$(grep "| $pl | $p | $n | $t |" /tmp/sys-run.log | head -1 | awk -F'|' '{print $6}')
calls=$(echo "$rps*3" | bc)
echo "$t $p x$n $pl: req/s $rps"
for s in s c; do echo -n "  $([ $s = s ] && echo server || echo client):"; grep "syscalls" /tmp/sys-$s.txt | awk -v c=$calls '{gsub(",","",$1); printf " %s %.3f", $2, $1/c}' | sed 's/syscalls:sys_enter_//g'; echo; done
rm -f bench/results/scratch-syscalls.*
