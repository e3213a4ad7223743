"""Reading an ext4 image as someone who seized the disk would: raw, past the file system.

:func:`scan_image` parses the superblock, the group descriptors, the block and inode bitmaps
and every slot of every inode table (used or not: a freed inode keeps its times), and reads
every byte of the image, used blocks and free ones, looking for needles (markers,
identifiers). It reports what it read and every finding:

- a needle anywhere in the image, with the block it is in and whether that block is in use;
- an inode time (access, change, modification, deletion, creation) that dates something
  more finely than a day: a time is allowed when it is 0, or a day boundary (00:00:00 UTC,
  no nanoseconds), or, to the second, within the window of the last daily blur, when every
  change time was set at once (the window is given by the caller, measured around the blur);
  the file system's own reserved inodes other than the root (resize inode, journal) keep
  the time of ``mkfs`` and are not a source's doing: they are skipped;
- a journal: a file system that has one keeps old copies of inode tables and directories.

The layout read here is ext4's (the kernel's Documentation/filesystems/ext4): superblock at
byte 1024, group descriptors in the block after it, inode times at fixed offsets.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

DAY: Final = 86400
_SUPERBLOCK: Final = 1024
_COMPAT_HAS_JOURNAL: Final = 0x4
_INCOMPAT_64BIT: Final = 0x80
_ROOT_INODE: Final = 2
#: (name, offset of the seconds, offset of the extra word or None, extra_isize it needs)
_TIMES: Final = (
    ("atime", 0x08, 0x8C, 16),
    ("ctime", 0x0C, 0x84, 8),
    ("mtime", 0x10, 0x88, 12),
    ("dtime", 0x14, None, 0),
    ("crtime", 0x90, 0x94, 24),
)


@dataclass
class ScanReport:
    image_bytes: int = 0
    block_size: int = 0
    blocks: int = 0
    blocks_in_use: int = 0
    inode_slots: int = 0
    inodes_in_use: int = 0
    inodes_with_times: int = 0
    inode_size: int = 0
    journal: bool = False
    superblock_times: dict[str, int] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"scanned {self.image_bytes} bytes: {self.blocks} blocks of {self.block_size} "
            f"({self.blocks_in_use} in use, {self.blocks - self.blocks_in_use} free), "
            f"{self.inode_slots} inode slots of {self.inode_size} bytes ({self.inodes_in_use} "
            f"in use, {self.inodes_with_times} with a time), journal: "
            f"{'yes' if self.journal else 'no'}; {len(self.findings)} finding(s)"
        )


def _u16(data: bytes, offset: int) -> int:
    return int(struct.unpack_from("<H", data, offset)[0])


def _u32(data: bytes, offset: int) -> int:
    return int(struct.unpack_from("<I", data, offset)[0])


def _bit(bitmap: bytes, index: int) -> bool:
    return bool(bitmap[index // 8] >> (index % 8) & 1)


@dataclass(frozen=True)
class TimeRule:
    """Which inode times are allowed: day boundaries, and the blur window (seconds)."""

    blur_start: int
    blur_end: int

    def allowed(self, seconds: int, nanoseconds: int) -> bool:
        if seconds == 0 and nanoseconds == 0:
            return True
        if seconds % DAY == 0 and nanoseconds == 0:
            return True
        return self.blur_start <= seconds <= self.blur_end


def superblock_times(image: Path) -> dict[str, int]:
    """The times the superblock keeps: of mkfs, of the last mount, check, write, errors."""
    with image.open("rb") as handle:
        handle.seek(_SUPERBLOCK)
        sb = handle.read(1024)
    return {
        "mount": _u32(sb, 0x2C), "write": _u32(sb, 0x30), "lastcheck": _u32(sb, 0x40),
        "mkfs": _u32(sb, 0x108), "first_error": _u32(sb, 0x198), "last_error": _u32(sb, 0x1CC),
    }  # fmt: skip


def scan_image(image: Path, needles: Mapping[str, bytes], rule: TimeRule) -> ScanReport:
    data = image.read_bytes()
    report = ScanReport(image_bytes=len(data))
    sb = data[_SUPERBLOCK : _SUPERBLOCK + 1024]
    block_size = 1024 << _u32(sb, 0x18)
    blocks = _u32(sb, 0x04)
    first_data_block = _u32(sb, 0x14)
    blocks_per_group, inodes_per_group = _u32(sb, 0x20), _u32(sb, 0x28)
    inode_size = _u16(sb, 0x58)
    first_ino = _u32(sb, 0x54)
    incompat = _u32(sb, 0x60)
    desc_size = _u16(sb, 0xFE) if incompat & _INCOMPAT_64BIT else 32
    report.block_size, report.blocks, report.inode_size = block_size, blocks, inode_size
    report.journal = bool(_u32(sb, 0x5C) & _COMPAT_HAS_JOURNAL)
    report.superblock_times = superblock_times(image)
    if report.journal:
        report.findings.append(
            "the file system has a journal: it keeps old copies of inode tables and directories"
        )
    groups = (blocks - first_data_block + blocks_per_group - 1) // blocks_per_group
    gdt = (first_data_block + 1) * block_size
    used_blocks = bytearray(blocks)
    for group in range(groups):
        desc = data[gdt + group * desc_size : gdt + (group + 1) * desc_size]

        def location(lo: int, hi: int, desc: bytes = desc) -> int:
            high = _u32(desc, hi) if desc_size >= 64 else 0
            return _u32(desc, lo) | high << 32

        block_bitmap = data[location(0x0, 0x20) * block_size :][:block_size]
        inode_bitmap = data[location(0x4, 0x24) * block_size :][:block_size]
        table = location(0x8, 0x28) * block_size
        first_block = first_data_block + group * blocks_per_group
        for index in range(min(blocks_per_group, blocks - first_block)):
            if _bit(block_bitmap, index):
                used_blocks[first_block + index] = 1
        for index in range(inodes_per_group):
            number = group * inodes_per_group + index + 1
            raw = data[table + index * inode_size : table + (index + 1) * inode_size]
            report.inode_slots += 1
            in_use = _bit(inode_bitmap, index)
            report.inodes_in_use += in_use
            if number < first_ino and number != _ROOT_INODE:
                continue  # the file system's own (journal, resize): made by mkfs
            _check_inode(report, number, in_use, raw, inode_size, rule)
    report.blocks_in_use = sum(used_blocks)
    for name, needle in needles.items():
        start = 0
        while (at := data.find(needle, start)) >= 0:
            block = at // block_size
            state = "in use" if block < blocks and used_blocks[block] else "free"
            report.findings.append(f"{name} at byte {at} (block {block}, {state})")
            start = at + 1
    return report


def _check_inode(
    report: ScanReport, number: int, in_use: bool, raw: bytes, inode_size: int, rule: TimeRule
) -> None:
    extra_isize = _u16(raw, 0x80) if inode_size > 128 else 0
    seen = False
    for name, offset, extra_offset, needs in _TIMES:
        if offset >= 0x80 and extra_isize < needs:
            continue
        seconds = _u32(raw, offset)
        nanoseconds = 0
        if extra_offset is not None and extra_isize >= needs:
            extra = _u32(raw, extra_offset)
            seconds |= (extra & 3) << 32
            nanoseconds = extra >> 2
        if seconds or nanoseconds:
            seen = True
        if not rule.allowed(seconds, nanoseconds):
            state = "in use" if in_use else "free"
            report.findings.append(
                f"inode {number} ({state}) {name} {seconds}.{nanoseconds:09d} "
                f"({seconds % DAY // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d} UTC)"
            )
    report.inodes_with_times += seen
