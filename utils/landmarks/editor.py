"""The landmark editor: a page on 127.0.0.1 to drag wrong landmarks into place (``correspondences.py --edit``).

Every style exemplar and content view with a landmark file is listed, the ones flagged "check by eye" first
(correspondences.py records its flags in <folder>/overlays/check_by_eye.json). Saving validates the 68 points
(finite, inside the image), writes the landmark file atomically, redraws its overlay, clears the flag and clears
the completion marker of every output pair made with those landmarks, so the next run.py redoes them.
The server is the standard library's; it listens on 127.0.0.1 only and stops on Ctrl-C.
"""
import io
import json
import mimetypes
import re
import signal
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Collection, Sequence

import numpy as np
from PIL import Image, ImageOps

from utils.batch import clear_marker
from utils.io.files import load_json, save_json
from utils.io.images import exif_orientation, image_size, list_images, read_image_downscaled, to_copy_pixels
from utils.io.landmarks import LANDMARK_COUNT, check_not_degenerate, load_landmarks, save_landmarks
from utils.errors import InputError
from utils.io.layout import checks_path, content_folders, landmark_overlay, pair_glob, style_landmarks
from utils.report.plots import save_keypoint_overlay

PAGE = Path(__file__).with_name("editor.html")
MAX_BODY = 64 * 1024  # bytes; a save is about 2 kB
SAVING = threading.Lock()  # saves run one at a time: a folder's images share its check-by-eye file, and two saves
# rewriting it at once would undo each other's changes
ITEM_NUMBER = re.compile(r"[0-9]{1,9}")  # ASCII digits only: str.isdigit also takes "²", which int() refuses
ALLOWED_HOST = re.compile(r"(127\.0\.0\.1|localhost)(:\d+)?")  # the Host header of a page this server served


@dataclass
class EditorItem:
    """One image and its landmark file; ``pairs_glob`` finds the output pairs made with it (relative to the
    output folder); ``flags``: the check-by-eye messages recorded for it."""

    name: str
    kind: str
    image: Path
    landmarks: Path
    pairs_glob: str
    flags: list

    @property
    def overlay(self) -> Path:
        """The overlay picture correspondences.py draws (the report shows it)."""
        return landmark_overlay(self.landmarks)


# ---- check-by-eye flags -----------------------------------------------------------------------------------

def _read_checks(landmark_path):
    """The recorded flags of a landmark file's folder: {file name: [messages]} ({} when none or unreadable)."""
    path = checks_path(landmark_path)
    try:
        recorded = load_json(path) if path.is_file() else {}
    except InputError:
        recorded = {}
    return recorded if isinstance(recorded, dict) else {}


def load_checks(landmark_path: str | Path) -> list[str]:
    """The check-by-eye messages recorded for a landmark file ([] when none)."""
    return list(_read_checks(landmark_path).get(Path(landmark_path).name, []))


def record_checks(landmark_path: str | Path, messages: Sequence[str]) -> None:
    """Record (or, with no messages, clear) the check-by-eye messages of a freshly written landmark file."""
    recorded = _read_checks(landmark_path)
    if messages:
        recorded[Path(landmark_path).name] = list(messages)
    elif recorded.pop(Path(landmark_path).name, None) is None:
        return
    save_json(checks_path(landmark_path), recorded)


# ---- what can be edited -----------------------------------------------------------------------------------

def find_items(content_root: str | Path, style_root: str | Path, only: Collection[str] = ()) -> list[EditorItem]:
    """EditorItems for every style image and content view with a landmark file, flagged ones first.

    only: names of style images (stems) or content meshes (folder names) to keep; empty: all.
    """
    items = []
    for image in list_images(style_root):
        if style_landmarks(image).is_file():
            items.append(EditorItem(image.stem, "style", image, style_landmarks(image), pair_glob(style=image.stem),
                                    []))
    for folder in content_folders(content_root):
        for k, landmarks in folder.landmark_files().items():
            image = folder.view(k)
            if image.is_file():
                items.append(EditorItem(f"{folder.name} view {k}", "content", image, landmarks,
                                        pair_glob(content=folder.name), []))
    if only:
        items = [item for item in items if item.image.stem in only or
                 (item.kind == "content" and item.image.parent.name in only)]
    for item in items:
        item.flags = load_checks(item.landmarks)
    return sorted(items, key=lambda item: (not item.flags, item.kind != "style", item.name))


# ---- saving -----------------------------------------------------------------------------------------------

def parse_points(body: bytes | str, image_size: Sequence[int]) -> np.ndarray:
    """The (68, 2) points of a save request's JSON body {"points": [[x, y], ...]}; InputError saying what is
    wrong otherwise. image_size: (height, width); points must lie within the image's pixel area."""
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as err:
        raise InputError(f"the request is not valid JSON ({err})") from None
    except RecursionError:  # brackets nested thousands deep: no save looks like that
        raise InputError("the request's JSON is nested too deeply") from None
    points = data.get("points") if isinstance(data, dict) else None
    if not isinstance(points, list) or len(points) != LANDMARK_COUNT or not all(
            isinstance(p, list) and len(p) == 2 and all(_is_number(v) for v in p) for p in points):
        raise InputError(f'expected {{"points": [[x, y], ...]}} with {LANDMARK_COUNT} pairs of numbers')
    points = np.array(points, dtype=np.float64)
    if not np.isfinite(points).all():
        raise InputError("every coordinate must be a finite number")
    height, width = image_size
    outside = (points < -0.5).any(axis=1) | (points[:, 0] > width - 0.5) | (points[:, 1] > height - 0.5)
    if outside.any():
        index = int(np.argmax(outside))
        raise InputError(f"point {index} ({points[index, 0]:g}, {points[index, 1]:g}) lies outside the "
                         f"{width}x{height} image")
    check_not_degenerate("the edited points", points)  # a file load_landmarks would refuse is not written
    return points


def _reject_constant(name):
    raise ValueError(f"{name} is not a number")


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def save_item(item: EditorItem, points: np.ndarray, output_root: str | Path, max_side: int | None) -> list[Path]:
    """Write the edited points: landmark file (atomic), overlay, flag cleared, affected pairs made incomplete.

    The overlay is drawn on the image read at most ``max_side`` pixels a side (a huge image is not decoded whole).
    Returns the output pair folders whose completion marker was cleared. An image that cannot be read is an
    InputError before anything is written.
    """
    with SAVING:
        image, scale, _ = read_image_downscaled(item.image, max_side)
        save_landmarks(item.landmarks, points)
        save_keypoint_overlay(item.overlay, image,
                              {f"{item.landmarks.name} (edited)": to_copy_pixels(points, scale)})
        record_checks(item.landmarks, [])
        item.flags = []
        pairs = sorted(folder for folder in Path(output_root).glob(item.pairs_glob) if folder.is_dir())
        for folder in pairs:
            clear_marker(folder)
    return pairs


def upright_file(path: Path) -> tuple[bytes, str]:
    """(bytes, content type) of an image file as the page must show it: the file itself, or, when it carries an
    EXIF orientation, its pixels turned upright as PNG (the landmarks are in upright pixels; a browser that
    ignored the tag would show them on a sideways picture)."""
    if exif_orientation(path) == 1:
        return path.read_bytes(), mimetypes.guess_type(path.name)[0] or "image/png"
    with Image.open(path) as image:
        turned = ImageOps.exif_transpose(image)
    buffer = io.BytesIO()
    turned.save(buffer, format="PNG")
    return buffer.getvalue(), "image/png"


# ---- the server -------------------------------------------------------------------------------------------

class EditorHandler(BaseHTTPRequestHandler):
    """GET / (the page), /api/items (JSON), /image/<i>; POST /api/save/<i> with {"points": [[x, y], ...]}."""

    items = []  # set on a subclass by make_server, as are:
    output_root = Path("output")
    max_side = None  # overlays are drawn on the image read at most this many pixels a side

    def do_GET(self) -> None:
        self._answer(self._get)

    def do_POST(self) -> None:
        self._answer(self._post)

    def _answer(self, handle):
        """Run ``handle``; whatever goes wrong in it, the request gets an HTTP answer with one line (the server
        stays up, and the page says what happened instead of waiting)."""
        self._answered = False
        try:
            handle()
        except Exception as err:  # noqa: BLE001  every request is answered, whatever failed
            if not self._answered:
                self._send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"failed: {type(err).__name__}: {err}"})

    def _get(self):
        refusal = self._host_refusal()
        if refusal:
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": refusal})
        elif self.path == "/":
            self._send(HTTPStatus.OK, PAGE.read_bytes(), "text/html; charset=utf-8")
        elif self.path == "/api/items":
            self._send_json(HTTPStatus.OK, [self._describe(i, item) for i, item in enumerate(self.items)])
        elif self.path.startswith("/image/") and self._item() is not None:
            self._send(HTTPStatus.OK, *upright_file(self._item().image))
        else:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {self.path}"})

    def _post(self):
        item = self._item() if self.path.startswith("/api/save/") else None
        refusal = self._host_refusal() or (self._refusal() if item is not None else "")
        if refusal:
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": f"not saved: {refusal}"})
            return
        if item is None:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no such item: {self.path}"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            points = parse_points(self.rfile.read(length), image_size(item.image))
            pairs = save_item(item, points, self.output_root, self.max_side)
        except InputError as err:
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": f"not saved: {err}"})
            return
        self._send_json(HTTPStatus.OK, {"saved": str(item.landmarks),
                                        "incomplete": [str(folder) for folder in pairs]})

    def _host_refusal(self):
        """Why any request is refused for its Host ("" when it is not): only 127.0.0.1 or localhost. Another site's
        name made to point at 127.0.0.1 (DNS rebinding) would let its pages read the answers, paths included."""
        host = self.headers.get("Host") or ""
        if ALLOWED_HOST.fullmatch(host):
            return ""
        return f"unexpected Host {host[:80]!r}; open the editor at 127.0.0.1"

    def _refusal(self):
        """Why a save request is refused before its points are read ("" when it is not): it must be JSON (other
        sites' pages cannot send JSON here without asking first) and small."""
        length = self.headers.get("Content-Length") or "0"
        if (self.headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
            return "send the points as JSON (Content-Type: application/json)"
        if not length.isdigit() or int(length) > MAX_BODY:
            return f"a save is at most {MAX_BODY} bytes, this one says {length}"
        return ""

    def _item(self):
        """The item numbered by the path's last part, or None."""
        tail = self.path.rsplit("/", 1)[-1]
        return self.items[int(tail)] if ITEM_NUMBER.fullmatch(tail) and int(tail) < len(self.items) else None

    def _describe(self, index, item):
        """An item for the page; an image or landmark file that cannot be read comes with its error and no points
        (the other items are listed all the same)."""
        (height, width), points, error = (1, 1), None, ""
        try:  # read as correspondences.py and run.py read it: the image size settles an ambiguous column order
            height, width = image_size(item.image)
            points = load_landmarks(item.landmarks, image_size=(height, width)).tolist()
        except InputError as err:
            error = str(err)
        return {"id": index, "name": item.name, "kind": item.kind, "flags": item.flags, "width": width,
                "height": height, "points": points, "error": error, "file": str(item.landmarks)}

    def _send_json(self, status, data):
        self._send(status, json.dumps(data).encode(), "application/json")

    def _send(self, status, body, content_type):
        self._answered = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str,  # noqa: A002  (the base class's name) quiet: errors go to the page
                    *args: Any) -> None:
        pass


def make_server(items: Sequence[EditorItem], output_root: str | Path, max_side: int | None,
                port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1 (``port``; 0: a free one) for these items; call serve_forever() on it.

    max_side: overlays are redrawn on the image read at most this many pixels a side (correspondences.py's)."""
    handler = type("Handler", (EditorHandler,), {"items": list(items), "output_root": Path(output_root),
                                                 "max_side": max_side})
    return ThreadingHTTPServer(("127.0.0.1", port), handler)


def serve(items: Sequence[EditorItem], output_root: str | Path, max_side: int | None, port: int = 0) -> None:
    """Serve the editor until Ctrl-C, printing its address; the socket is closed on the way out (``make_server``)."""
    if not items:
        raise InputError("no image with a landmark file to edit; run correspondences.py first")
    server = make_server(items, output_root, max_side, port)
    if threading.current_thread() is threading.main_thread():
        # a process started in the background by a shell inherits SIGINT ignored, and then never stopped (CI)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    flagged = sum(bool(item.flags) for item in items)
    print(f"landmark editor: http://127.0.0.1:{server.server_address[1]}/ ({len(items)} images, {flagged} "
          f"flagged to check by eye); Ctrl-C to stop", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("landmark editor stopped")
    finally:
        server.server_close()
