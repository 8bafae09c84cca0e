#!/usr/bin/env bash
# Builds the patient app's APK with buildozer (needs the Android SDK/NDK, which buildozer
# downloads on first use: not possible in CI or on machines without internet access).
# Stages the sources under .local/apk/ so the repository layout stays as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
STAGE=.local/apk
rm -rf "$STAGE/src" "$STAGE/recipes"
mkdir -p "$STAGE/src"
cp mobile_app/android/buildozer.spec "$STAGE/buildozer.spec"
for package in protocols device_drivers edge_agent mobile_app; do
    cp -r "$package" "$STAGE/src/$package"
done
find "$STAGE/src" -name __pycache__ -prune -exec rm -rf {} +
cat > "$STAGE/src/main.py" <<'PY'
from mobile_app.__main__ import main

main(["--data-dir", "."])
PY
BLEAK_DIR=$(.venv/bin/python -c "import bleak, os; print(os.path.dirname(bleak.__file__))")
cp -r "$BLEAK_DIR/backends/p4android/recipes" "$STAGE/recipes"
if ! command -v buildozer >/dev/null 2>&1; then
    echo "buildozer is not installed: pip install buildozer==1.6.0 cython (see docs/mobile_app.md)" >&2
    exit 2
fi
cd "$STAGE" && buildozer android debug
echo "APK in $STAGE/bin/"
