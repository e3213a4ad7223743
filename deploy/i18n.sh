#!/usr/bin/env bash
# Refresh the source interface's translations: extract the strings marked in dropbox/ (Python
# and templates, see dropbox/babel.cfg) into dropbox/translations/messages.pot, merge that
# template into each language's messages.po, then compile every messages.po into the
# messages.mo that ships in the package (committed, so no build step is needed).
#
#   deploy/i18n.sh            extract, update and compile
#   deploy/i18n.sh compile    only compile (after editing a .po file)
#
# New or changed strings arrive in the .po files empty or marked "#, fuzzy" (a guess from a
# similar old string); tests/dropbox/test_i18n.py fails until each is translated and its fuzzy
# flag removed. Then run this script again (or "deploy/i18n.sh compile") and commit the
# .pot, .po and .mo files together.
#
# A new language: add it to LANGUAGES in dropbox/app.py and run this script; its catalogue is
# created from the template.
set -euo pipefail

cd "$(dirname "$0")/.."
PYBABEL=${PYBABEL:-.venv/bin/pybabel}
PYTHON=${PYTHON:-.venv/bin/python}
DIR=dropbox/translations
POT=$DIR/messages.pot

# The interface languages other than English, from dropbox/app.py (the one list of them).
mapfile -t LOCALES < <("$PYTHON" -c '
from dropbox.app import DEFAULT_LANGUAGE, LANGUAGES
for code, _ in LANGUAGES:
    if code != DEFAULT_LANGUAGE:
        print(code)
')
if ((${#LOCALES[@]} == 0)); then
    echo "i18n.sh: found no language but English in dropbox/app.py" >&2
    exit 1
fi

if [[ ${1:-} != compile ]]; then
    mkdir -p "$DIR"
    fresh=$(mktemp)
    trap 'rm -f "$fresh"' EXIT
    "$PYBABEL" --quiet extract --mapping-file=dropbox/babel.cfg --output-file="$fresh" \
        --project=Postern --version="$(sed -n "s/^version = //p" setup.cfg)" \
        --copyright-holder="the Postern authors" --width=100 \
        --sort-by-file dropbox
    # Keep the old template when only its date would change (no churn in the catalogues).
    if [[ -f $POT ]] && diff -q -I '^"POT-Creation-Date: ' "$POT" "$fresh" >/dev/null; then
        echo "messages.pot: no string changed"
    else
        cat "$fresh" >"$POT"
    fi
    for locale in "${LOCALES[@]}"; do
        # --init-missing creates the catalogue of a new language; --ignore-obsolete drops the
        # strings that are gone from the code.
        "$PYBABEL" update --input-file="$POT" --output-dir="$DIR" --locale="$locale" \
            --init-missing --ignore-obsolete --width=100
    done
fi

for locale in "${LOCALES[@]}"; do
    "$PYBABEL" compile --directory="$DIR" --locale="$locale" --statistics
done
