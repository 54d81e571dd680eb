#!/usr/bin/env bash
# meson install into a DESTDIR: every file in its place, and the installed
# binary finds its own data and pages there (not the source tree's).
source "$E2E_LIB"
: "${MESON:?}" "${BUILD_ROOT:?}"
ROOT="$WORK/root"
ok "$MESON" install -C "$BUILD_ROOT" --destdir "$ROOT" --no-rebuild --quiet
IBSP=$(find "$ROOT" -path '*/bin/bsp' -type f | head -1)
CHECKS=$((CHECKS + 1))
[ -x "$IBSP" ] || fail "no bin/bsp under the DESTDIR"
PREFIX=$(dirname "$(dirname "$IBSP")")
# The files: every subcommand's page and the format pages, the completion,
# the hardware descriptions.
for s in $("$IBSP" __complete 1 bsp ""); do
  CHECKS=$((CHECKS + 1))
  [ -f "$PREFIX/share/man/man1/bsp-$s.1" ] || fail "bsp-$s.1 not installed"
done
for f in share/man/man1/bsp.1 share/man/man5/bsp-format.5 share/man/man5/bsp-aie2.5 share/man/man7/bsp-isa.7 \
  share/bash-completion/completions/bsp share/bsp/aie2/aie2.json share/bsp/aie2/npu1.json; do
  CHECKS=$((CHECKS + 1))
  [ -f "$PREFIX/$f" ] || fail "$f not installed"
done

# The installed binary runs a pipeline.
ok "$IBSP" --version
ok "$IBSP" init --arch fmnist-cnn -o m.h5
ok "$IBSP" prune m.h5 --pattern block:8x8 --density 0.5 -q -o p.h5
ok "$IBSP" schedule p.h5 --target npu1 -o s.h5
# It reads the installed data: a description added there alone is a target
# (completed, and scheduled for).
sed 's/"name": *"[^"]*"/"name": "install-probe"/' "$PREFIX/share/bsp/aie2/aie2-2x2.json" \
  >"$PREFIX/share/bsp/aie2/install-probe.json"
CHECKS=$((CHECKS + 1))
"$IBSP" __complete 3 bsp schedule --target install- | grep -qx install-probe ||
  fail "the installed binary does not list a target of its installed data"
ok "$IBSP" schedule p.h5 --target install-probe -o s2.h5
err 2 schedule "unknown target 'install-probe'" "$BSP" schedule p.h5 --target install-probe -o s3.h5
no_file s3.h5
# It shows its installed pages: mark the installed copy.
if command -v man >/dev/null; then
  sed -i 's/^bsp-help \\- .*/bsp-help \\- installed copy/' "$PREFIX/share/man/man1/bsp-help.1"
  ok "$IBSP" help help
  out_has 'bsp-help - installed copy'
fi
# The installed completion script completes with the installed binary.
CHECKS=$((CHECKS + 1))
got=$(bash -c 'source "$1"; COMP_WORDS=("$2" schedule --target install-p); COMP_CWORD=3; _bsp; printf "%s\n" "${COMPREPLY[@]}"' \
  _ "$PREFIX/share/bash-completion/completions/bsp" "$IBSP")
[ "$got" = install-probe ] || fail "installed completion: got '$got'"

finish
