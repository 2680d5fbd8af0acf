# An artifact the new build cannot read fails the script too.
. "$(dirname "$0")/lib.sh"
mkdir -p artifacts/1.0 build-streams
stream artifacts/1.0/vm.mig cpu:x86-cpu:1:cpu
cp "$SAMPLES/corrupt.mig" artifacts/1.0/corrupt.mig
stream build-streams/vm.mig cpu:x86-cpu:1:cpu
MIGSTREAM_TOOLS=$TOOLS sh "$src/tools/compat-check.sh" artifacts build-streams
