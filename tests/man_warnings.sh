#!/bin/bash
# Every manual page in man/ formats without a groff warning (issue 29): the
# man macros with every warning on (-ww), output discarded (-z). A page with
# a table would need -t; none has one.
set -u
dir=${1:?usage: man_warnings.sh MAN_DIR}
status=0
n=0
for page in "$dir"/*.[1-9]; do
  n=$((n + 1))
  warnings=$(LC_ALL=C.UTF-8 groff -ww -z -man -Tutf8 "$page" 2>&1)
  if [ -n "$warnings" ]; then
    echo "FAIL: $(basename "$page"):" >&2
    echo "$warnings" | sed 's/^/  /' >&2
    status=1
  fi
done
[ "$n" -gt 0 ] || { echo "FAIL: no pages in $dir" >&2; exit 1; }
[ "$status" -eq 0 ] && echo "ok: $n pages without groff warnings"
exit $status
