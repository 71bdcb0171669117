#!/usr/bin/env bash
# Runs the Dockerfile's steps without a container engine, in a throwaway root, so that
# the file cannot rot:
#   - the build stage's RUN commands, as written, in a copy of the source tree (what
#     `COPY . .` copies: the tracked files, less .dockerignore's);
#   - the run stage: its package list (`install-deps.sh runtime`) must hold every
#     shared library the copied programs need; the programs are copied as its
#     `COPY --from=build` lines say;
#   - the ENTRYPOINT and CMD, as written, run as the USER's uid in the WORKDIR, in a
#     network namespace of their own; /healthz and /readyz, the probes, must answer 200.
# Also: docs/operations.md's Kubernetes example names the same user, port and probes.
# Run as root (the test command is). Leaves nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(mktemp -d)
chmod 755 "$root"  # the USER, not root, must reach the image
trap 'rm -rf "$root"' EXIT
python3 - Dockerfile "$root" <<'PY'
import json, shlex, sys
lines, stages = open(sys.argv[1]).read().replace("\\\n", " ").splitlines(), []
for line in lines:
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    word, _, rest = line.partition(" ")
    if word == "FROM":
        stages.append({"RUN": [], "COPY": [], "WORKDIR": "/"})
    elif word in ("RUN", "COPY"):
        stages[-1][word].append(rest)
    elif word in ("WORKDIR", "USER"):
        stages[-1][word] = rest.strip()
    elif word in ("ENTRYPOINT", "CMD"):
        stages[-1][word] = json.loads(rest)
build, run = stages[0], stages[-1]
out = sys.argv[2]
open(f"{out}/build-workdir", "w").write(build["WORKDIR"])
open(f"{out}/build-run", "w").write("\n".join(build["RUN"]) + "\n")
copies = [shlex.split(c) for c in run["COPY"] if c.startswith("--from=build ")]
open(f"{out}/copies", "w").write("\n".join(" ".join(c[1:]) for c in copies) + "\n")
open(f"{out}/run-lines", "w").write("\n".join(run["RUN"]) + "\n")
open(f"{out}/user", "w").write(run["USER"])
open(f"{out}/workdir", "w").write(run["WORKDIR"])
open(f"{out}/command", "w").write(
    " ".join(shlex.quote(a) for a in run["ENTRYPOINT"] + run.get("CMD", [])))
PY

echo "check-container: the build stage, in a copy of the source"
src="$root/stage$(cat "$root/build-workdir")"
mkdir -p "$src"
git ls-files -z | grep -zvE '^(\.git|build|data|out)(/|$)' | xargs -0 cp --parents -t "$src"
( cd "$src" && while IFS= read -r cmd; do
    [ -n "$cmd" ] || continue
    echo "  RUN $cmd"
    bash -euo pipefail -c "$cmd" >"$root/build.log" 2>&1 || { tail -30 "$root/build.log"; exit 1; }
  done <"$root/build-run" )

echo "check-container: the run stage"
image="$root/image"
while read -r -a paths; do
  [ ${#paths[@]} -gt 0 ] || continue
  dest="$image${paths[-1]}"
  mkdir -p "$dest"
  for p in "${paths[@]:0:${#paths[@]}-1}"; do cp "$root/stage$p" "$dest"; done
done <"$root/copies"
grep -q 'install-deps.sh runtime' "$root/run-lines"
scripts/install-deps.sh runtime
runtime=$(sed -n '/^RUNTIME=(/,/^)/p' scripts/install-deps.sh | tr ' ' '\n' | grep -vE '^(RUNTIME=\(|\)|)$')
# What installing them brings: they and everything they depend on.
closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
  --no-breaks --no-replaces --no-enhances $runtime | grep -v '^ ' | sed 's/:amd64$//' | sort -u)
# Every library the programs load, and the package that holds it (one dpkg look-up).
for bin in "$image"/usr/local/bin/*; do ldd "$bin"; done | python3 -c '
import os, subprocess, sys
closure = set(sys.argv[1].split())
libs = {os.path.realpath(l.split("=>")[1].split()[0]) for l in sys.stdin if "=>" in l and "/" in l}
names = sorted({os.path.basename(l) for l in libs})
found = subprocess.run(["dpkg", "-S", *names], capture_output=True, text=True).stdout
owner = {}
for line in found.splitlines():
    pkgs, _, path = line.partition(": ")
    if os.path.realpath(path) in libs:
        owner[os.path.realpath(path)] = pkgs.split(",")[0].split(":")[0].strip()
missing = [l + " (" + owner.get(l, "no package") + ")" for l in sorted(libs)
           if owner.get(l) not in closure]
if missing:
    sys.exit("check-container: the run stage does not install " + ", ".join(missing))
' "$closure"

uid=$(cat "$root/user")
[ "$uid" != 0 ] && [ "$uid" != root ]
workdir="$image$(cat "$root/workdir")"
mkdir -p "$workdir"
chown -R "$uid" "$workdir"
echo "check-container: $(cat "$root/command"), as uid $uid, the probes"
unshare -n bash -euo pipefail -c '
  ip link set lo up
  cd "$1"
  PATH="$2/usr/local/bin:$PATH" setpriv --reuid "$3" --regid "$3" --clear-groups \
    bash -c "exec $4" >"$5/server.log" 2>&1 &
  server=$!
  until curl -sf -o /dev/null http://127.0.0.1:8080/healthz; do
    kill -0 "$server" 2>/dev/null || { cat "$5/server.log"; exit 1; }
    sleep 0.05
  done
  test "$(curl -s -o /dev/null -w "%{http_code}" http://127.0.0.1:8080/readyz)" = 200
  test "$(ps -o uid= -p "$server" | tr -d " ")" = "$3"
  kill -TERM "$server"
  wait "$server"
' _ "$workdir" "$image" "$uid" "$(cat "$root/command")" "$root"
grep -q '"message":"stopped"' "$root/server.log" || { cat "$root/server.log"; exit 1; }
# docs/operations.md's Kubernetes example agrees with the Dockerfile.
python3 - "$(cat "$root/user")" <<'PY'
import re, sys, yaml
doc = open("docs/operations.md").read()
section = doc[doc.index("## In a container"):]
blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
objects = [o for b in blocks for o in yaml.safe_load_all(b)]
deployment = next(o for o in objects if isinstance(o, dict) and o.get("kind") == "Deployment")
pod = deployment["spec"]["template"]["spec"]
assert pod["securityContext"]["runAsUser"] == int(sys.argv[1]), "runAsUser is not the Dockerfile's USER"
container = pod["containers"][0]
assert container["ports"][0]["containerPort"] == 8080
assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
PY
echo "check-container: ok"
