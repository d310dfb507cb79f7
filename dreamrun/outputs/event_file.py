"""A TensorBoard event file written with the tensorboard package alone, for code that must start without torch.

dreamrun-summarize logs a sweep this way. The values are the protos torch's SummaryWriter writes
for add_image, add_text and add_scalar, so TensorBoard shows them the same way.
"""
import io
import time
from pathlib import Path

from PIL import Image
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.compat.proto.types_pb2 import DT_STRING
from tensorboard.plugins.text.metadata import create_summary_metadata
from tensorboard.summary.writer.event_file_writer import EventFileWriter


class EventFile:
    """A new event file in log_dir (its name ends with filename_suffix), written when the block ends."""

    def __init__(self, log_dir: Path, filename_suffix: str = ""):
        self.writer = EventFileWriter(str(log_dir), filename_suffix=filename_suffix)

    def __enter__(self) -> "EventFile":
        return self

    def __exit__(self, *exc_info) -> None:
        self.writer.close()

    def add_image(self, tag: str, image: Image.Image, step: int) -> None:
        png = io.BytesIO()
        image.save(png, format="PNG")
        self._add(step, Summary.Value(tag=tag, image=Summary.Image(
            height=image.height, width=image.width, colorspace=len(image.getbands()),
            encoded_image_string=png.getvalue())))

    def add_text(self, tag: str, text: str, step: int) -> None:
        """Markdown for the Text tab, under tag/text_summary as torch's add_text names it."""
        self._add(step, Summary.Value(
            tag=f"{tag}/text_summary", metadata=create_summary_metadata(display_name="", description=""),
            tensor=TensorProto(dtype=DT_STRING, string_val=[text.encode()],
                               tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]))))

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self._add(step, Summary.Value(tag=tag, simple_value=value))

    def _add(self, step: int, value: Summary.Value) -> None:
        self.writer.add_event(Event(wall_time=time.time(), step=step, summary=Summary(value=[value])))
