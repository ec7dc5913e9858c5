#!/usr/bin/env bash
# The folder tools/gpu/evaluate.sh needs on a lent GPU machine, built here (it downloads from the package registries):
# what the machine's Python 3.12 lacks (PyAV, pytorchvideo and theirs, pydantic; pytest and its plugins for the test
# that evaluates), as the files of their wheels, unzipped, in one xz tarball (site.tar.xz: extracted, a site folder).
# The device tool carries 64 MiB with the working tree (about 37 MB): PyAV's wheel alone is 36 MB (deflated), the
# tarball of everything about 27 MB.
#
#   tools/gpu/carry.sh [FOLDER]    FOLDER: .gpu/evaluate; keep it out of git (.git/info/exclude) and name it in `carry`
set -euo pipefail
cd "$(dirname "$0")/../.."
folder=${1:-.gpu/evaluate}
mkdir -p "$folder"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
wheels=$work/wheels
target=(--no-deps --only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64
        --platform manylinux2014_x86_64)
pip download -q "${target[@]}" -d "$wheels" av==18.1.0 pydantic_core==2.46.4
# Versions: requirements.txt's, and for what it leaves to resolution those installed with it here; the pure Python
# ones built as wheels where they publish only sources (pytorchvideo, fvcore, iopath, yacs).
pip wheel -q --no-deps -w "$wheels" pytorchvideo==0.1.5 fvcore==0.1.5.post20221221 iopath==0.1.10 yacs==0.1.8 \
    termcolor==3.3.0 portalocker==4.4.2 parameterized==0.9.0 pydantic==2.13.4 annotated_types==0.7.0 \
    typing_inspection==0.4.2 pytest==9.2.0 pluggy==1.6.0 iniconfig==2.3.0 pytest-xdist==3.8.0 execnet==2.1.2 \
    hypothesis==6.155.2 sortedcontainers==2.4.0 attrs==26.1.0
for wheel in "$wheels"/*.whl; do python -m zipfile -e "$wheel" "$work/site"; done
tar -C "$work/site" -cf - . | xz -9e -T2 > "$folder/site.tar.xz"
ls -l "$folder/site.tar.xz"
