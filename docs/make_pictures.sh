#!/usr/bin/env bash
# Remake the README's dream pictures with dreamrun itself, offline (EfficientNet-Lite0 from PyPI):
# the sample-photo dream, the zoom GIF, the video GIF, the sweep summary and the atlas; then the TensorBoard screenshots
# (make_screenshots.sh, which needs headless Chromium). Run from the repo root with dreamrun installed.
set -euo pipefail
runs=$(mktemp -d)

# the sample photo and its dream, side by side
python -m dreamrun model=efficientnet_lite0 target=block_12 octaves=3 log=none hydra.run.dir="$runs/coffee"

# a masked dream: a feathered disc over the sample photo (docs/config.md, "Masks")
python -c "from PIL import Image, ImageDraw
mask = Image.new('L', (512, 341), 0)
ImageDraw.Draw(mask).ellipse((150, 40, 420, 310), fill=255)
mask.save('$runs/mask.png')"
python -m dreamrun model=efficientnet_lite0 target=block_12 octaves=3 mask.path="$runs/mask.png" mask.feather=24 \
    log=none hydra.run.dir="$runs/masked"

# a seamless dream from noise, and a plain one, each tiled 2x2 (docs/config.md, "Seamless tiles")
for seamless in true false; do
    python -m dreamrun model=efficientnet_lite0 target=block_10 input=noise input.size=192 octaves=4 steps=20 \
        step_size=0.02 seamless=$seamless log=none hydra.run.dir="$runs/seamless_$seamless"
done

# the zoom command of the README's "Zoom dreams" section
python -m dreamrun mode=zoom model=efficientnet_lite0 input=noise input.size=192 zoom.frames=72 \
    zoom.steps_per_frame=8 zoom.factor=0.03 zoom.rotation=0.5 step_size=0.02 \
    '~target.block_12' '+target.block_10=[5,17,40]' log=none hydra.run.dir="$runs/zoom"

# the keyframed zoom of docs/zoom-and-video.md, "Keyframed motion"
python -m dreamrun mode=zoom model=efficientnet_lite0 input=noise input.size=192 zoom.frames=72 zoom.steps_per_frame=8 \
    'zoom.rotation={0: 0, 36: 3, 71: -3}' 'zoom.shift={0: [0, 0], 71: [4, 0]}' 'zoom.factor={0: 0.01, 71: 0.05}' \
    zoom.easing=smooth 'target.block_12={channels: [5, 17, 40], weight: {0: 1, 71: 3}}' step_size=0.02 \
    log=none hydra.run.dir="$runs/keyframes"

# the video of the README's "Video dreams" section: a pan over the sample photo, dreamed; its preview.gif
python -c "import sys; from pathlib import Path; sys.path.insert(0, '.')
from benchmarks.video_flicker import panning_clip
panning_clip(Path('$runs/pan.mp4'), frames=24, width=224, height=160, fps=12)"
python -m dreamrun mode=video model=efficientnet_lite0 input=video input.path="$runs/pan.mp4" input.size=null \
    log=none hydra.run.dir="$runs/video"

# the sweep of the README's "Sweeps" section
python -m dreamrun -m model=efficientnet_lite0 target=block_6,block_10,block_14 octaves=2,3 input.size=256 \
    log=none hydra.sweep.dir="$runs/sweep"

# the atlas of docs/feature-visualisation.md: 16 channels of block_8 from noise, dreamed together
python -m dreamrun -m +preset=atlas model=efficientnet_lite0 target=block_8 'target.block_8=range(0,16)' \
    hydra.sweep.dir="$runs/atlas"

python - "$runs" <<'EOF'
import sys
from pathlib import Path
from PIL import Image, ImageSequence

runs = Path(sys.argv[1])
source, dream = Image.open(runs / "coffee/input.png"), Image.open(runs / "coffee/dream.png")
pair = Image.new("RGB", (2 * source.width + 8, source.height), "white")
pair.paste(source, (0, 0))
pair.paste(dream, (source.width + 8, 0))
pair.save("docs/lite0_block_12_coffee.jpg", quality=85)

images = [Image.open(runs / "masked/input.png"), Image.open(runs / "mask.png").convert("RGB"),
          Image.open(runs / "masked/dream.png")]
row = Image.new("RGB", (sum(i.width for i in images) + 16, images[0].height), "white")
for k, image in enumerate(images):
    row.paste(image, (k * (image.width + 8), 0))
row.thumbnail((1200, 1200))
row.save("docs/mask_lite0_coffee.jpg", quality=85)

grids = []
for seamless in ("true", "false"):
    dream = Image.open(runs / f"seamless_{seamless}/dream.png")
    grid = Image.new("RGB", (2 * dream.width, 2 * dream.height))
    for x in (0, dream.width):
        for y in (0, dream.height):
            grid.paste(dream, (x, y))
    grids.append(grid)
row = Image.new("RGB", (2 * grids[0].width + 16, grids[0].height), "white")
row.paste(grids[0], (0, 0))
row.paste(grids[1], (grids[0].width + 16, 0))
row.save("docs/seamless_lite0_tiles.jpg", quality=85)

def readme_gif(animation: Path, picture: str) -> None:
    """Every other frame at 160 px keeps the GIF small enough for a README."""
    with Image.open(animation) as gif:
        duration = gif.info.get("duration", 83)
        frames = [frame.convert("RGB").resize((160, 160), Image.LANCZOS)
                  for i, frame in enumerate(ImageSequence.Iterator(gif)) if i % 2 == 0]
    frames[0].save(picture, save_all=True, append_images=frames[1:], duration=2 * duration, loop=0, optimize=True)


readme_gif(runs / "zoom/zoom.gif", "docs/zoom_lite0_block_10.gif")
readme_gif(runs / "keyframes/zoom.gif", "docs/zoom_lite0_keyframes.gif")

with Image.open(runs / "video/preview.gif") as gif:  # dreamrun's own preview, optimised
    duration = gif.info.get("duration", 83)
    frames = [frame.convert("RGB") for frame in ImageSequence.Iterator(gif)]
frames[0].save("docs/video_lite0_pan.gif", save_all=True, append_images=frames[1:], duration=duration, loop=0,
               optimize=True)

Image.open(runs / "sweep/summary.png").convert("RGB").save("docs/sweep_summary.jpg", quality=85)
atlas = Image.open(runs / "atlas/summary.png").convert("RGB")
atlas.thumbnail((900, 900))
atlas.save("docs/atlas_lite0_block_8.jpg", quality=88)
EOF
bash "$(dirname "$0")/make_screenshots.sh"
echo "pictures remade in docs/ (runs in $runs)"
