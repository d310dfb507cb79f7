#!/usr/bin/env bash
# Remake the README's TensorBoard screenshots from real dreamrun runs, a real TensorBoard and
# headless Chromium (Debian: apt-get install chromium). Run from the repo root with dreamrun installed.
set -euo pipefail
runs=$(mktemp -d)
python -m dreamrun model=efficientnet_lite0 target=block_12 +target.block_8=all 'target.block_12=[3,17,42]' \
    octaves=3 steps=20 log.image_every=10 hydra.run.dir="$runs/coffee_lite0_block12"
python -m dreamrun model=efficientnet_lite0 target=block_6 octaves=3 steps=20 hydra.run.dir="$runs/coffee_lite0_block6"
port=6123
tensorboard --logdir "$runs" --host 127.0.0.1 --port $port >/dev/null 2>&1 &
server=$!
trap 'kill $server' EXIT
sleep 8
shoot() {  # url-fragment output.png
    chromium --headless --no-sandbox --disable-quic --no-first-run --disable-background-networking \
        --disable-component-update --disable-sync --user-data-dir="$(mktemp -d)" --hide-scrollbars \
        --use-angle=swiftshader --enable-unsafe-swiftshader --window-size=1500,1000 \
        --virtual-time-budget=25000 --screenshot="$2" "http://127.0.0.1:$port/?darkMode=false#$1"
}
shoot "scalars&_smoothingWeight=0" "$runs/scalars.png"
shoot "images&tagFilter=heatmap" "$runs/images.png"
python -c "
from PIL import Image
Image.open('$runs/scalars.png').convert('RGB').save('docs/tensorboard_scalars.jpg', quality=85)
Image.open('$runs/images.png').convert('RGB').save('docs/tensorboard_images.jpg', quality=85)"
