"""A contact sheet: thumbnails on a grid, each with a few lines of caption, rows and columns labelled.

    ┌──────────┬──────────────┬──────────────┐
    │          │ octaves=2    │ octaves=4    │   column labels (if any)
    ├──────────┼──────────────┼──────────────┤
    │ target=  │ [thumbnail]  │ [thumbnail]  │
    │ mixed_5b │ caption      │ caption      │
    └──────────┴──────────────┴──────────────┘
"""
import textwrap
from dataclasses import dataclass, field
from typing import Optional, Sequence

from PIL import Image, ImageDraw, ImageFont

THUMB = 192  # px, the longer side of a thumbnail
PAD = 8
LINE = 16  # px per line of text
CAPTION_LINES = 3
LABEL_WIDTH = 160  # px for row labels
HEADER_LINES = 2  # lines for column labels

BACKGROUND = (24, 24, 24)
TEXT = (230, 230, 230)
MUTED = (150, 150, 150)
ALERT = (255, 110, 100)


@dataclass
class Tile:
    image: Optional[Image.Image]  # None: a placeholder with `placeholder` written on it
    caption: list[str] = field(default_factory=list)
    placeholder: str = ""
    alert: bool = False  # caption in red: something went wrong


@dataclass(frozen=True)
class Layout:
    """Where everything goes. The thumbnail frame takes the images' aspect ratio, so a sweep of
    landscape dreams is not padded into squares."""

    thumb: tuple[int, int] = (THUMB, THUMB)  # (width, height) of every thumbnail frame
    row_labels: bool = False
    col_labels: bool = False

    @classmethod
    def for_images(cls, image_size: Optional[tuple[int, int]], **labels: bool) -> "Layout":
        if image_size is None:
            return cls(**labels)
        w, h = image_size
        scale = THUMB / max(w, h)
        return cls((max(16, round(w * scale)), max(16, round(h * scale))), **labels)

    @property
    def cell(self) -> tuple[int, int]:
        return self.thumb[0] + 2 * PAD, self.thumb[1] + CAPTION_LINES * LINE + 3 * PAD

    @property
    def origin(self) -> tuple[int, int]:
        """The top-left corner of the first cell."""
        return (LABEL_WIDTH if self.row_labels else 0), (HEADER_LINES * LINE + 2 * PAD if self.col_labels else 0)

    def size(self, rows: int, cols: int) -> tuple[int, int]:
        return self.origin[0] + cols * self.cell[0], self.origin[1] + rows * self.cell[1]

    def frame(self, row: int, col: int) -> tuple[int, int]:
        """The top-left corner of the thumbnail frame of cell (row, col)."""
        return self.origin[0] + col * self.cell[0] + PAD, self.origin[1] + row * self.cell[1] + PAD

    def thumbnail_box(self, image_size: tuple[int, int], row: int, col: int) -> tuple[int, int, int, int]:
        """Where an image of this size lands in the frame of (row, col): fitted, centred."""
        (x, y), (fw, fh), (w, h) = self.frame(row, col), self.thumb, image_size
        scale = min(fw / w, fh / h)
        tw, th = max(1, round(w * scale)), max(1, round(h * scale))
        x0, y0 = x + (fw - tw) // 2, y + (fh - th) // 2
        return x0, y0, x0 + tw, y0 + th


def contact_sheet(tiles: Sequence[Sequence[Optional[Tile]]], layout: Layout,
                  row_labels: Sequence[str] = (), col_labels: Sequence[str] = ()) -> Image.Image:
    """tiles[r][c] (None leaves the cell empty); labels are one string per row / column, lines split on '\\n'."""
    rows, cols = len(tiles), max((len(row) for row in tiles), default=0)
    sheet = Image.new("RGB", layout.size(rows, cols), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=12)
    thumb_w, thumb_h = layout.thumb

    for c, label in enumerate(col_labels):
        x, _ = layout.frame(0, c)
        _write(draw, font, label, (x, PAD), thumb_w, HEADER_LINES, TEXT)
    for r, label in enumerate(row_labels):
        _, y = layout.frame(r, 0)
        lines = min(label.count("\n") + 1, thumb_h // LINE)
        _write(draw, font, label, (PAD, y + (thumb_h - lines * LINE) // 2),  # level with the thumbnails' centres
               LABEL_WIDTH - 2 * PAD, max(1, thumb_h // LINE), TEXT)
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            if tile is None:
                continue
            x, y = layout.frame(r, c)
            colour = ALERT if tile.alert else TEXT
            if tile.image is not None:
                box = layout.thumbnail_box(tile.image.size, r, c)
                thumb = tile.image.convert("RGB").resize((box[2] - box[0], box[3] - box[1]), Image.LANCZOS)
                sheet.paste(thumb, box[:2])
            else:
                draw.rectangle((x, y, x + thumb_w - 1, y + thumb_h - 1), outline=ALERT if tile.alert else MUTED, width=2)
                draw.text((x + thumb_w // 2, y + thumb_h // 2), tile.placeholder, font=font, anchor="mm",
                          fill=ALERT if tile.alert else MUTED)
            _write(draw, font, "\n".join(tile.caption), (x, y + thumb_h + PAD), thumb_w, CAPTION_LINES, colour)
    return sheet


def _write(draw: ImageDraw.ImageDraw, font: ImageFont.ImageFont, text: str, at: tuple[int, int],
           width: int, max_lines: int, fill: tuple[int, int, int]) -> None:
    """text wrapped to width px, cut to max_lines with an ellipsis when it does not fit."""
    chars = max(4, int(width / max(1.0, font.getlength("x"))))
    lines = [wrapped for line in text.split("\n") for wrapped in textwrap.wrap(line, chars) or [""]]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][:max(0, chars - 1)] + "…"
    for i, line in enumerate(lines):
        while len(line) > 1 and font.getlength(line) > width:  # wide glyphs: trim until it fits
            line = line[:-2] + "…"
        draw.text((at[0], at[1] + i * LINE), line, font=font, fill=fill)
