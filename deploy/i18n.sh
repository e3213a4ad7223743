#!/usr/bin/env bash
# Refresh the translations of both web interfaces: the source interface (dropbox/) and the
# station UI (journalist_ui/web). For each, extract the marked strings (Python and templates,
# see its babel.cfg) into its translations/messages.pot, merge that template into each
# language's messages.po, then compile every messages.po into the messages.mo that ships in
# the package (committed, so no build step is needed).
#
#   deploy/i18n.sh            extract, update and compile, both interfaces
#   deploy/i18n.sh compile    only compile (after editing a .po file)
#
# New or changed strings arrive in the .po files empty or marked "#, fuzzy" (a guess from a
# similar old string); tests/dropbox/test_i18n.py and tests/journalist_ui/test_i18n.py fail
# until each is translated and its fuzzy flag removed. Then run this script again (or
# "deploy/i18n.sh compile") and commit the .pot, .po and .mo files together.
#
# A new language: add it to LANGUAGES in dropbox/languages.py (source interface) or in
# journalist_ui/web/language.py (station UI) and run this script; its catalogue is created
# from the template. The command-line tools are not translated.
set -euo pipefail

cd "$(dirname "$0")/.."
PYBABEL=${PYBABEL:-.venv/bin/pybabel}
PYTHON=${PYTHON:-.venv/bin/python}

# refresh NAME CONFIG SOURCES TRANSLATIONS MODULE [compile]
#   the catalogues of one interface; MODULE holds its LANGUAGES and DEFAULT_LANGUAGE.
refresh() {
    local name=$1 config=$2 sources=$3 dir=$4 module=$5 mode=${6:-}
    local pot=$dir/messages.pot locales
    # The interface languages other than English, from MODULE (the one list of them).
    mapfile -t locales < <("$PYTHON" -c "
from $module import DEFAULT_LANGUAGE, LANGUAGES
for code, _ in LANGUAGES:
    if code != DEFAULT_LANGUAGE:
        print(code)
")
    if ((${#locales[@]} == 0)); then
        echo "i18n.sh: found no language but English in $module" >&2
        exit 1
    fi
    if [[ $mode != compile ]]; then
        mkdir -p "$dir"
        local fresh
        fresh=$(mktemp)
        "$PYBABEL" --quiet extract --mapping-file="$config" --output-file="$fresh" \
            --project=Postern --version="$(sed -n "s/^version = //p" setup.cfg)" \
            --copyright-holder="the Postern authors" --width=100 \
            --sort-by-file "$sources"
        # Keep the old template when only its date would change (no churn in the catalogues).
        if [[ -f $pot ]] && diff -q -I '^"POT-Creation-Date: ' "$pot" "$fresh" >/dev/null; then
            echo "$name: messages.pot: no string changed"
        else
            cat "$fresh" >"$pot"
        fi
        rm -f "$fresh"
        local locale
        for locale in "${locales[@]}"; do
            # --init-missing creates the catalogue of a new language; --ignore-obsolete drops
            # the strings that are gone from the code.
            "$PYBABEL" update --input-file="$pot" --output-dir="$dir" --locale="$locale" \
                --init-missing --ignore-obsolete --width=100
        done
    fi
    for locale in "${locales[@]}"; do
        "$PYBABEL" compile --directory="$dir" --locale="$locale" --statistics
    done
}

mode=${1:-}
refresh "source interface" dropbox/babel.cfg dropbox dropbox/translations dropbox.app "$mode"
refresh "station UI" journalist_ui/babel.cfg journalist_ui/web journalist_ui/translations \
    journalist_ui.web.language "$mode"
