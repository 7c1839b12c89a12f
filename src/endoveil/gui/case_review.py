"""A case in two phases, with a human review in between (the cases package runs one go).

``prepare_case``: check the segments, merge them into the review's work folder under the
pseudonym's name, and detect (labels only). The user then reviews the merged video.
``export_case``: write the anonymized video from the reviewed labels into the output folder,
prove it with `verify`, checksum, and append the mapping-log row. Every step is a public
function of `endoveil.cases` or the offline pipeline; nothing is re-implemented here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from endoveil import __version__, api
from endoveil.anonymize.offline import EXACT_PRESET, PipelineConfig, output_paths
from endoveil.anonymize.verify import VerifyReport
from endoveil.cases.discover import Case
from endoveil.cases.mapping_log import MappingRow, append_row, check_log_location
from endoveil.cases.merge import check_segments, merge_segments, plan_merge
from endoveil.cases.state import now_utc
from endoveil.cases.worker import sha256
from endoveil.detect.classifier import Classifier
from endoveil.detect.labels import Labels

__all__ = ["ExportedCase", "PreparedCase", "export_case", "prepare_case"]

StageProgress = Callable[[str, int, int], None]
"""Called with (stage, done, total)."""


@dataclass(frozen=True)
class PreparedCase:
    """A merged case and its detected labels, ready for review."""

    merged: Path
    labels: Path
    merge: str
    merge_message: str


@dataclass
class ExportedCase:
    """What `export_case` wrote; ``report`` says whether the output is proven safe."""

    video: Path | None
    labels: Path
    report: VerifyReport | None
    row: MappingRow | None
    notes: list[str]


def prepare_case(
    case: Case,
    pseudonym: str,
    work_dir: Path,
    config: PipelineConfig,
    classifier: Classifier,
    progress: StageProgress,
) -> PreparedCase:
    """Merge ``case`` into ``work_dir/<pseudonym>.mp4`` and detect its out-of-body segments.

    Raises:
        MediaError: a segment cannot be read or merged.
        OutputError: the work folder cannot be written.
    """
    progress("check", 0, len(case.segments))
    infos = check_segments(case.segments)
    progress("check", len(case.segments), len(case.segments))
    plan = plan_merge(infos)
    # The merged file's stem names every output: it must be the pseudonym.
    suffix = infos[0].path.suffix.lower() if plan.method == "single" else ".mp4"
    merged_path = work_dir / f"{pseudonym}{suffix}"
    merged_path.unlink(missing_ok=True)  # a resumed preparation starts over
    merged = merge_segments(
        plan,
        merged_path,
        keep_audio=config.keep_audio,
        preset=config.preset or EXACT_PRESET,
        crf=config.crf,
        progress=lambda d, t: progress("merge", d, t),
    )
    detect_config = replace(config, labels_only=True, labels_in=None, force=True)
    result = api.anonymize_video(
        merged.path,
        work_dir,
        **detect_config.as_options(),
        model=classifier,
        progress=lambda d, t: progress("detect", d, t),
    )
    return PreparedCase(merged.path, result.labels_paths[0], plan.method, plan.message)


def export_case(
    case: Case,
    merged: Path,
    reviewed: Path,
    output_root: Path,
    log: Path,
    config: PipelineConfig,
    *,
    pseudonym_kind: str,
    merge: str,
    progress: StageProgress,
) -> ExportedCase:
    """Anonymize the merged case with its reviewed labels, verify it, log the mapping.

    The mapping-log row is written only for an output that `verify` passed; a failed output
    is deleted (the report stays with the job).

    Raises:
        OutputExistsError: an output exists (without ``force``).
        OutputError: the log lies in the output folder, or the log cannot be written.
        LabelsFormatError: the reviewed labels do not fit the merged video.
    """
    check_log_location(log, output_root)
    export_config = replace(config, labels_in=reviewed, labels_only=False)
    stage = ["write"]
    # The reviewed labels as an object: the pipeline probes the merged video once and checks
    # that they fit it (a path would make the API probe it a second time just to read them).
    options = {**export_config.as_options(), "labels": Labels.load(reviewed)}
    result = api.anonymize_video(
        merged,
        output_root,
        **options,
        progress=lambda d, t: progress(stage[0], d, t),
        stage=lambda name: stage.__setitem__(0, name),
    )
    labels_path = result.labels_paths[0]
    if result.video_path is None:
        return ExportedCase(None, labels_path, None, None, result.notes)
    try:
        report = api.verify(
            merged, result.video_path, result.labels, progress=lambda d, t: progress("verify", d, t)
        )
        if not report.ok:
            for path in output_paths(merged, output_root, export_config):
                path.unlink(missing_ok=True)
            return ExportedCase(None, labels_path, report, None, result.notes)

        files = [*case.segments, labels_path, result.video_path]
        hashes = []
        for n, path in enumerate(files):
            progress("hash", n, len(files))
            hashes.append(sha256(path))
        progress("hash", len(files), len(files))
        row = MappingRow(
            case_folder=os.path.abspath(case.folder),
            case=case.case_id,
            original_files=[str(p.relative_to(case.folder)) for p in case.segments],
            pseudonym=merged.stem,
            created_at=now_utc(),
            source_sha256=hashes[: len(case.segments)],
            output_file=result.video_path.name,
            output_sha256=hashes[-1],
            labels_sha256=hashes[-2],
            model=dict(result.labels.model.__dict__),
            parameters=_parameters(export_config, pseudonym_kind, merge, result.mode or ""),
        )
        append_row(log, row)
    except BaseException:
        # Cancelled or failed before the output was proven and logged: it must not stay in
        # the shared folder without its mapping-log row.
        for path in output_paths(merged, output_root, export_config):
            path.unlink(missing_ok=True)
        raise
    return ExportedCase(result.video_path, labels_path, report, row, result.notes)


def _parameters(config: PipelineConfig, kind: str, merge: str, mode: str) -> dict[str, Any]:
    settings = asdict(config)
    settings.pop("force", None)
    settings["labels_in"] = "reviewed"  # the review's file lives in the GUI's data folder
    return {
        **settings,
        "pseudonym": kind,
        "merge": merge,
        "mode_used": mode,
        "verified": True,
        "reviewed": True,
        "endoveil": __version__,
    }
