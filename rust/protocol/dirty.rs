// SPDX-License-Identifier: GPL-2.0

//! Device-side dirty-page tracking, the pure part: the device model's
//! vendor tracking capabilities (NVPT, Identify Controller vendor area), the
//! plan of a tracking session (ranges merged to the device's limit, the
//! granularity), the split of a report into commands, and the translation of
//! a returned bitmap into dirty runs.
//!
//! Contract: `Documentation/device-model.rst`, "Vendor memory-change
//! tracking (NVP Track Memory, C5h/C6h)". The encoders of the commands
//! themselves are in [`super::tp4159`].
//!
//! Addresses are IOVAs of the tracked VF. A [`Range`] is half-open,
//! `start..end`; every function here checks for overflow, so a range that
//! ends at the top of the address space (`end == u64::MAX`, as VFIO allows)
//! is handled.
//!
//! Locking: none; every item is plain data.

/// Offset of the NVPT block in Identify Controller (vendor-specific area).
pub(crate) const NVPT_OFFSET: usize = 3072;
/// Length of the NVPT block.
pub(crate) const NVPT_LEN: usize = 16;
/// The NVPT signature.
pub(crate) const NVPT_SIGNATURE: [u8; 4] = *b"NVPT";
/// The NVPT version this driver understands.
pub(crate) const NVPT_VERSION: u8 = 1;
/// Size of one range descriptor of Track Memory Send Start.
pub(crate) const RANGE_DESC_LEN: usize = 16;
/// The smallest granularity VFIO can report (4 KiB, log2).
pub(crate) const MIN_SHIFT: u8 = 12;
/// The largest granularity this code plans with (log2); keeps every shift
/// of a `u64` defined.
pub(crate) const MAX_SHIFT: u8 = 62;

/// The vendor tracking capabilities of a PF (its Identify Controller, bytes
/// 3072..3088).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TrackCaps {
    /// Most ranges per tracked controller.
    pub(crate) maxr: u8,
    /// Smallest granularity, log2 bytes.
    pub(crate) mings: u8,
    /// Largest granularity, log2 bytes.
    pub(crate) maxgs: u8,
    /// Most pages tracked per controller, over all its ranges.
    pub(crate) maxpg: u32,
    /// Most bitmap bytes one Report returns.
    pub(crate) maxrb: u32,
}

impl TrackCaps {
    /// Parses the NVPT block at the start of `b`. `None` (tracking not
    /// offered) when `b` is short, the signature or version is not ours, or
    /// a limit is unusable (no range, no page, no bitmap byte, a granularity
    /// below 4 KiB or above [`MAX_SHIFT`], MINGS above MAXGS).
    pub(crate) fn parse(b: &[u8]) -> Option<Self> {
        if b.len() < NVPT_LEN || b[0..4] != NVPT_SIGNATURE || b[4] != NVPT_VERSION {
            return None;
        }
        let c = Self {
            maxr: b[5],
            mings: b[6],
            maxgs: b[7],
            maxpg: super::le32(b, 8),
            maxrb: super::le32(b, 12),
        };
        let ok = c.maxr != 0
            && c.maxpg != 0
            && c.maxrb != 0
            && c.mings >= MIN_SHIFT
            && c.mings <= c.maxgs
            && c.maxgs <= MAX_SHIFT;
        ok.then_some(c)
    }

    /// The most pages one Report may cover when a single data transfer can
    /// carry at most `max_xfer` bytes: at most MAXRB bitmap bytes, the
    /// dword-rounded bitmap within `max_xfer`, a `u32` count; a multiple of
    /// 32 pages (whole dwords) whenever the limits allow one dword.
    pub(crate) fn report_pages(&self, max_xfer: usize) -> u32 {
        let xfer = u32::try_from(max_xfer).unwrap_or(u32::MAX);
        let bytes = self.maxrb.min(xfer & !3);
        if bytes < 4 {
            // Fewer than 32 pages per command; the bitmap still takes a
            // dword, so the transfer must allow 4 bytes.
            return if xfer >= 4 { self.maxrb * 8 } else { 0 };
        }
        let pages = u64::from(bytes & !3) * 8;
        pages.min(u64::from(!31u32)) as u32
    }
}

/// A half-open IOVA range, `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Range {
    /// First byte.
    pub(crate) start: u64,
    /// One past the last byte.
    pub(crate) end: u64,
}

impl Range {
    /// The range from an inclusive `start..=last` (an interval tree node).
    pub(crate) fn from_last(start: u64, last: u64) -> Option<Self> {
        (start <= last && last < u64::MAX).then(|| Self {
            start,
            end: last + 1,
        })
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.end - self.start
    }
}

/// Why a tracking session cannot be planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PlanError {
    /// No range, an empty or reversed range, or ranges not sorted and
    /// disjoint.
    BadRanges,
    /// The page size is 0.
    BadPageSize,
    /// Even at the device's largest granularity the ranges need more pages
    /// than it tracks (or reach the top of the address space once aligned).
    TooLarge {
        /// The pages needed at the largest granularity (saturated).
        pages: u64,
        /// The device's limit.
        maxpg: u32,
        /// The largest granularity, log2 bytes.
        maxgs: u8,
    },
    /// The requested page size is larger than the device's largest
    /// granularity.
    PageTooLarge {
        /// The requested page size, log2 (rounded up).
        shift: u8,
        /// The largest granularity, log2 bytes.
        maxgs: u8,
    },
}

/// A planned session: granularity and the number of ranges of the plan,
/// which are the first `nranges` entries of the slice given to [`plan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Granularity, log2 bytes.
    pub(crate) gs: u8,
    /// Ranges to track.
    pub(crate) nranges: usize,
    /// Pages tracked over all ranges.
    pub(crate) pages: u64,
}

impl Plan {
    /// The granularity in bytes.
    pub(crate) fn granule(&self) -> u64 {
        1u64 << self.gs
    }
}

/// Checks that `r` is non-empty, each range non-empty, sorted and disjoint.
fn check_sorted(r: &[Range]) -> Result<(), PlanError> {
    if r.is_empty() || r.iter().any(|x| x.start >= x.end) {
        return Err(PlanError::BadRanges);
    }
    if r.windows(2).any(|w| w[0].end > w[1].start) {
        return Err(PlanError::BadRanges);
    }
    Ok(())
}

/// Merges sorted, disjoint ranges until at most `max` (at least 1) remain,
/// each time closing the smallest gap between neighbours (the first one on
/// a tie). Returns the new count; the result is in `r[..count]`.
pub(crate) fn merge_ranges(r: &mut [Range], max: usize) -> usize {
    let max = max.max(1);
    let mut n = r.len();
    while n > max {
        let mut best = 0;
        let mut gap = u64::MAX;
        for i in 0..n - 1 {
            let g = r[i + 1].start.saturating_sub(r[i].end);
            if g < gap {
                gap = g;
                best = i;
            }
        }
        r[best].end = r[best + 1].end;
        r.copy_within(best + 2..n, best + 1);
        n -= 1;
    }
    n
}

/// Widens sorted ranges to `1 << gs` alignment and joins those that then
/// touch or overlap. Returns the count, or `None` when a range's end
/// cannot be aligned (top of the address space).
fn align_ranges(r: &mut [Range], gs: u8) -> Option<usize> {
    let mask = (1u64 << gs) - 1;
    let mut n = 0;
    for i in 0..r.len() {
        let start = r[i].start & !mask;
        let end = r[i].end.checked_add(mask)? & !mask;
        if n > 0 && r[n - 1].end >= start {
            r[n - 1].end = r[n - 1].end.max(end);
        } else {
            r[n] = Range { start, end };
            n += 1;
        }
    }
    Some(n)
}

/// Pages of `1 << gs` bytes in aligned ranges (saturating).
fn pages(r: &[Range], gs: u8) -> u64 {
    r.iter()
        .fold(0u64, |acc, x| acc.saturating_add(x.len() >> gs))
}

/// `log2` of `v` rounded up (`v` not 0).
fn ceil_log2(v: u64) -> u32 {
    64 - (v - 1).leading_zeros()
}

/// Plans a session for the sorted, disjoint ranges in `r` (as VFIO gives
/// them) at a requested page size: merges them down to MAXR (smallest gaps
/// first), takes the granularity `max(page_size, MINGS)` (the page size
/// rounded up to a power of two), widens the ranges to it, and doubles it
/// until the pages fit MAXPG. The ranges to send are left in
/// `r[..plan.nranges]`.
pub(crate) fn plan(r: &mut [Range], page_size: u64, caps: &TrackCaps) -> Result<Plan, PlanError> {
    check_sorted(r)?;
    if page_size == 0 {
        return Err(PlanError::BadPageSize);
    }
    let shift = ceil_log2(page_size);
    if shift > u32::from(caps.maxgs) {
        return Err(PlanError::PageTooLarge {
            shift: shift.min(64) as u8,
            maxgs: caps.maxgs,
        });
    }
    let mut n = merge_ranges(r, usize::from(caps.maxr));
    let mut gs = caps.mings.max(shift as u8);
    loop {
        // Aligning to a larger power of two of an aligned range is the same
        // as aligning the original, so the ranges are widened in place.
        let Some(m) = align_ranges(&mut r[..n], gs) else {
            return Err(PlanError::TooLarge {
                pages: u64::MAX,
                maxpg: caps.maxpg,
                maxgs: caps.maxgs,
            });
        };
        n = m;
        let p = pages(&r[..n], gs);
        if p <= u64::from(caps.maxpg) {
            return Ok(Plan {
                gs,
                nranges: n,
                pages: p,
            });
        }
        if gs >= caps.maxgs {
            return Err(PlanError::TooLarge {
                pages: p,
                maxpg: caps.maxpg,
                maxgs: caps.maxgs,
            });
        }
        gs += 1;
    }
}

/// Encodes the range descriptors of Track Memory Send Start ({u64 start, u64
/// length}, little endian) into `out`; returns the bytes used, `None` when
/// `out` is too small.
pub(crate) fn encode_ranges(r: &[Range], out: &mut [u8]) -> Option<usize> {
    let n = r.len().checked_mul(RANGE_DESC_LEN)?;
    if out.len() < n {
        return None;
    }
    for (d, x) in out.chunks_exact_mut(RANGE_DESC_LEN).zip(r.iter()) {
        d[0..8].copy_from_slice(&x.start.to_le_bytes());
        d[8..16].copy_from_slice(&x.len().to_le_bytes());
    }
    Some(n)
}

/// One Report and Clear command: `npg` pages of the granularity from
/// `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReportCmd {
    /// First page's address, a multiple of the granularity.
    pub(crate) start: u64,
    /// Pages covered (not 0).
    pub(crate) npg: u32,
}

impl ReportCmd {
    /// Bytes of the bitmap the command returns: ceil(NPG / 32) dwords.
    pub(crate) fn bitmap_len(&self) -> usize {
        (self.npg as usize).div_ceil(32) * 4
    }
}

/// The Report commands that cover the request `iova..iova + len` over the
/// tracked (aligned, sorted) ranges at granularity `gs`, each of at most
/// `max_pages` pages. Pages outside every tracked range are not asked
/// for (they read 0). The request is widened to whole pages, so an edge
/// page is cleared in full (see [`dirty_runs`]).
pub(crate) struct Reports<'a> {
    ranges: &'a [Range],
    gs: u8,
    max_pages: u64,
    /// The widened request.
    lo: u64,
    hi: u64,
    /// Next range and the next address in it.
    i: usize,
    pos: u64,
}

impl<'a> Reports<'a> {
    /// The commands for one request; none for an empty request or
    /// `max_pages` 0.
    pub(crate) fn new(ranges: &'a [Range], gs: u8, iova: u64, len: u64, max_pages: u32) -> Self {
        let mask = (1u64 << gs) - 1;
        let lo = iova & !mask;
        // A request reaching the top widens to the top: the tracked ranges
        // end below it, so nothing is lost by saturating.
        let hi = iova
            .saturating_add(len)
            .checked_add(mask)
            .map_or(!mask, |e| e & !mask);
        let empty = len == 0 || max_pages == 0;
        Self {
            ranges,
            gs,
            max_pages: u64::from(max_pages),
            lo,
            hi: if empty { lo } else { hi },
            i: 0,
            pos: 0,
        }
    }
}

impl Iterator for Reports<'_> {
    type Item = ReportCmd;

    fn next(&mut self) -> Option<ReportCmd> {
        while self.i < self.ranges.len() {
            let r = self.ranges[self.i];
            let start = r.start.max(self.lo).max(self.pos);
            let end = r.end.min(self.hi);
            if start >= end {
                self.i += 1;
                continue;
            }
            let npg = ((end - start) >> self.gs).min(self.max_pages);
            if npg == 0 {
                // Not page aligned: the tracked ranges are, so never.
                self.i += 1;
                continue;
            }
            self.pos = start + (npg << self.gs);
            if self.pos >= end {
                self.i += 1;
            }
            return Some(ReportCmd {
                start,
                npg: npg as u32,
            });
        }
        None
    }
}

/// Calls `set(start, len)` for each run of dirty pages in the bitmap a
/// Report `cmd` returned (bit i of byte i / 8 is the page at `cmd.start +
/// (i << gs)`), clipped to the request `iova..iova + len` (VFIO's bitmap
/// covers only the request). Consecutive dirty pages form one run. Bits
/// past `cmd.npg` or past the end of `bitmap` are ignored.
pub(crate) fn dirty_runs(
    bitmap: &[u8],
    cmd: &ReportCmd,
    gs: u8,
    iova: u64,
    len: u64,
    mut set: impl FnMut(u64, u64),
) {
    let clip_lo = iova;
    let clip_hi = iova.saturating_add(len);
    let npg = (cmd.npg as usize).min(bitmap.len() * 8);
    let mut emit = |first: usize, count: usize| {
        let s = cmd.start.saturating_add((first as u64) << gs);
        let e = s.saturating_add((count as u64) << gs);
        let (s, e) = (s.max(clip_lo), e.min(clip_hi));
        if s < e {
            set(s, e - s);
        }
    };
    let mut run: Option<usize> = None;
    let mut i = 0;
    while i < npg {
        let byte = bitmap[i / 8];
        if byte == 0 && i % 8 == 0 {
            // Whole clear byte: close a run and skip it.
            if let Some(f) = run.take() {
                emit(f, i - f);
            }
            i += 8;
            continue;
        }
        let dirty = byte & (1 << (i % 8)) != 0;
        match (dirty, run) {
            (true, None) => run = Some(i),
            (false, Some(f)) => {
                emit(f, i - f);
                run = None;
            }
            _ => {}
        }
        i += 1;
    }
    if let Some(f) = run {
        emit(f, npg - f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G4K: u8 = 12;

    fn caps() -> TrackCaps {
        TrackCaps {
            maxr: 16,
            mings: 12,
            maxgs: 30,
            maxpg: 1 << 22,
            maxrb: 65536,
        }
    }

    fn nvpt(
        sig: &[u8; 4],
        ver: u8,
        maxr: u8,
        mings: u8,
        maxgs: u8,
        maxpg: u32,
        maxrb: u32,
    ) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(sig);
        b[4] = ver;
        b[5] = maxr;
        b[6] = mings;
        b[7] = maxgs;
        b[8..12].copy_from_slice(&maxpg.to_le_bytes());
        b[12..16].copy_from_slice(&maxrb.to_le_bytes());
        b
    }

    fn r(start: u64, end: u64) -> Range {
        Range { start, end }
    }

    #[test]
    fn caps_parse() {
        let b = nvpt(b"NVPT", 1, 16, 12, 30, 1 << 22, 65536);
        assert_eq!(TrackCaps::parse(&b), Some(caps()));
        assert_eq!(TrackCaps::parse(&b[..15]), None);
        assert_eq!(TrackCaps::parse(&[0u8; 16]), None);
        assert_eq!(TrackCaps::parse(&nvpt(b"NVPt", 1, 16, 12, 30, 1, 1)), None);
        assert_eq!(TrackCaps::parse(&nvpt(b"NVPT", 2, 16, 12, 30, 1, 1)), None);
        assert_eq!(TrackCaps::parse(&nvpt(b"NVPT", 0, 16, 12, 30, 1, 1)), None);
        assert_eq!(TrackCaps::parse(&nvpt(b"NVPT", 1, 0, 12, 30, 1, 1)), None);
        assert_eq!(TrackCaps::parse(&nvpt(b"NVPT", 1, 1, 11, 30, 1, 1)), None);
        assert_eq!(TrackCaps::parse(&nvpt(b"NVPT", 1, 1, 13, 12, 1, 1)), None);
        assert_eq!(TrackCaps::parse(&nvpt(b"NVPT", 1, 1, 12, 63, 1, 1)), None);
        assert_eq!(TrackCaps::parse(&nvpt(b"NVPT", 1, 1, 12, 12, 0, 1)), None);
        assert_eq!(TrackCaps::parse(&nvpt(b"NVPT", 1, 1, 12, 12, 1, 0)), None);
        let one = TrackCaps::parse(&nvpt(b"NVPT", 1, 1, 12, 12, 1, 1)).unwrap();
        assert_eq!(
            (one.maxr, one.mings, one.maxgs, one.maxpg, one.maxrb),
            (1, 12, 12, 1, 1)
        );
    }

    #[test]
    fn report_pages_limits() {
        let c = caps();
        assert_eq!(c.report_pages(1 << 20), 65536 * 8);
        // MDTS smaller than MAXRB wins, rounded down to whole dwords.
        assert_eq!(c.report_pages(4096), 4096 * 8);
        assert_eq!(c.report_pages(4099), 4096 * 8);
        let odd = TrackCaps { maxrb: 7, ..c };
        assert_eq!(odd.report_pages(4096), 32);
        let tiny = TrackCaps { maxrb: 2, ..c };
        assert_eq!(tiny.report_pages(4096), 16);
        assert_eq!(tiny.report_pages(3), 0);
        let huge = TrackCaps {
            maxrb: u32::MAX,
            ..c
        };
        assert_eq!(huge.report_pages(usize::MAX), !31u32);
    }

    #[test]
    fn merge_closes_smallest_gaps() {
        let mut v = [
            r(0, 10),
            r(100, 110),
            r(115, 120),
            r(1000, 1010),
            r(1012, 1020),
        ];
        // Gaps: 90, 5, 880, 2. Two merges: the 2 then the 5.
        assert_eq!(merge_ranges(&mut v, 3), 3);
        assert_eq!(&v[..3], &[r(0, 10), r(100, 120), r(1000, 1020)]);
        let mut v = [r(0, 10), r(20, 30), r(40, 50)];
        assert_eq!(merge_ranges(&mut v, 5), 3);
        // Tie: the first gap.
        assert_eq!(merge_ranges(&mut v, 2), 2);
        assert_eq!(&v[..2], &[r(0, 30), r(40, 50)]);
        let mut v = [r(0, 10), r(20, 30), r(40, 50)];
        assert_eq!(merge_ranges(&mut v, 0), 1);
        assert_eq!(v[0], r(0, 50));
    }

    #[test]
    fn plan_two_ranges_at_4k() {
        // QEMU's usual pair: below 4 GiB and above.
        let mut v = [r(0, 0x8000_0000), r(0x1_0000_0000, 0x1_4000_0000)];
        let p = plan(&mut v, 4096, &caps()).unwrap();
        assert_eq!((p.gs, p.nranges, p.pages), (12, 2, 0xc0000));
        assert_eq!(p.granule(), 4096);
        assert_eq!(
            &v[..2],
            &[r(0, 0x8000_0000), r(0x1_0000_0000, 0x1_4000_0000)]
        );
    }

    #[test]
    fn plan_many_ranges_merged() {
        // 40 one-page ranges, 2 pages apart, then one far away.
        let mut v: Vec<Range> = (0..40u64)
            .map(|i| r(i * 0x3000, i * 0x3000 + 0x1000))
            .collect();
        v.push(r(1 << 40, (1 << 40) + 0x1000));
        let p = plan(&mut v, 4096, &caps()).unwrap();
        assert!(p.nranges <= 16);
        assert_eq!(p.gs, 12);
        // Every original page is covered, nothing overlaps.
        let out = &v[..p.nranges];
        for w in out.windows(2) {
            assert!(w[0].end < w[1].start);
        }
        for i in 0..40u64 {
            let a = i * 0x3000;
            assert!(out.iter().any(|x| x.start <= a && a + 0x1000 <= x.end));
        }
        assert_eq!(out[p.nranges - 1], r(1 << 40, (1 << 40) + 0x1000));
    }

    #[test]
    fn plan_granularity_raised_and_aligned() {
        let c = caps();
        // Page size above MINGS is the granularity; a non power of two
        // rounds up.
        let mut v = [r(0x10000, 0x30000)];
        assert_eq!(plan(&mut v, 0x10000, &c).unwrap().gs, 16);
        let mut v = [r(0x10000, 0x30000)];
        assert_eq!(plan(&mut v, 0x9000, &c).unwrap().gs, 16);
        // Unaligned ranges widen; ranges that meet after widening join.
        let c2 = TrackCaps { mings: 16, ..c };
        let mut v = [r(0x1000, 0x2000), r(0xf000, 0x11000), r(0x40000, 0x41000)];
        let p = plan(&mut v, 4096, &c2).unwrap();
        assert_eq!((p.gs, p.nranges, p.pages), (16, 2, 3));
        assert_eq!(&v[..2], &[r(0, 0x20000), r(0x40000, 0x50000)]);
        // Too many pages: the granularity doubles until they fit.
        let c3 = TrackCaps { maxpg: 1000, ..c };
        let mut v = [r(0, 1 << 30)];
        let p = plan(&mut v, 4096, &c3).unwrap();
        // 1 GiB / 1 MiB = 1024 pages > 1000, so 2 MiB.
        assert_eq!((p.gs, p.pages), (21, 512));
    }

    #[test]
    fn plan_doubles_exactly() {
        let c = TrackCaps {
            maxpg: 1024,
            ..caps()
        };
        let mut v = [r(0, 1 << 30)];
        let p = plan(&mut v, 4096, &c).unwrap();
        assert_eq!((p.gs, p.pages), (20, 1024));
        let c = TrackCaps {
            maxpg: 1023,
            ..caps()
        };
        let mut v = [r(0, 1 << 30)];
        let p = plan(&mut v, 4096, &c).unwrap();
        assert_eq!((p.gs, p.pages), (21, 512));
    }

    #[test]
    fn plan_errors() {
        let c = TrackCaps {
            maxpg: 4,
            maxgs: 13,
            ..caps()
        };
        let mut v = [r(0, 0x100000)];
        assert_eq!(
            plan(&mut v, 4096, &c),
            Err(PlanError::TooLarge {
                pages: 128,
                maxpg: 4,
                maxgs: 13
            })
        );
        assert_eq!(plan(&mut [], 4096, &caps()), Err(PlanError::BadRanges));
        assert_eq!(
            plan(&mut [r(5, 5)], 4096, &caps()),
            Err(PlanError::BadRanges)
        );
        assert_eq!(
            plan(&mut [r(0, 0x2000), r(0x1000, 0x3000)], 4096, &caps()),
            Err(PlanError::BadRanges)
        );
        assert_eq!(
            plan(&mut [r(0x4000, 0x5000), r(0, 0x1000)], 4096, &caps()),
            Err(PlanError::BadRanges)
        );
        assert_eq!(
            plan(&mut [r(0, 0x1000)], 0, &caps()),
            Err(PlanError::BadPageSize)
        );
        assert_eq!(
            plan(&mut [r(0, 1 << 31)], 1 << 31, &caps()),
            Err(PlanError::PageTooLarge {
                shift: 31,
                maxgs: 30
            })
        );
        // The top of the address space cannot be aligned up.
        let top = r(u64::MAX - 0x1800, u64::MAX);
        assert!(matches!(
            plan(&mut [top], 4096, &caps()),
            Err(PlanError::TooLarge { .. })
        ));
        // But a range ending on an aligned address below the top is fine.
        let mut v = [r(u64::MAX - 0x1fff, u64::MAX - 0xfff)];
        assert_eq!(plan(&mut v, 4096, &caps()).unwrap().pages, 1);
    }

    #[test]
    fn from_last() {
        assert_eq!(Range::from_last(0, 0xfff), Some(r(0, 0x1000)));
        assert_eq!(Range::from_last(2, 1), None);
        assert_eq!(Range::from_last(0, u64::MAX), None);
    }

    #[test]
    fn ranges_encoding() {
        let mut out = [0xaau8; 40];
        assert_eq!(
            encode_ranges(
                &[r(0x1000, 0x3000), r(1 << 40, (1 << 40) + 0x1000)],
                &mut out
            ),
            Some(32)
        );
        assert_eq!(&out[0..8], &0x1000u64.to_le_bytes());
        assert_eq!(&out[8..16], &0x2000u64.to_le_bytes());
        assert_eq!(&out[16..24], &(1u64 << 40).to_le_bytes());
        assert_eq!(&out[24..32], &0x1000u64.to_le_bytes());
        assert_eq!(&out[32..], &[0xaa; 8]);
        assert_eq!(encode_ranges(&[r(0, 1); 3], &mut out), None);
    }

    fn reports(ranges: &[Range], gs: u8, iova: u64, len: u64, max: u32) -> Vec<(u64, u32)> {
        Reports::new(ranges, gs, iova, len, max)
            .map(|c| (c.start, c.npg))
            .collect()
    }

    #[test]
    fn reports_split() {
        let t = [r(0, 0x10000), r(0x100000, 0x120000)];
        // The whole space: each range, in pieces of at most 8 pages.
        assert_eq!(
            reports(&t, G4K, 0, u64::MAX, 8),
            [
                (0, 8),
                (0x8000, 8),
                (0x100000, 8),
                (0x108000, 8),
                (0x110000, 8),
                (0x118000, 8)
            ]
        );
        assert_eq!(
            reports(&t, G4K, 0, 1 << 32, 1 << 20),
            [(0, 16), (0x100000, 32)]
        );
        // A request inside one range, unaligned: widened to whole pages.
        assert_eq!(reports(&t, G4K, 0x1800, 0x1000, 100), [(0x1000, 2)]);
        // A request in a gap: no command.
        assert!(reports(&t, G4K, 0x20000, 0x1000, 100).is_empty());
        assert!(reports(&t, G4K, 0, 0, 100).is_empty());
        assert!(reports(&t, G4K, 0, 0x1000, 0).is_empty());
        // Granularity 64 KiB: the request is widened to it.
        let t = [r(0, 0x100000)];
        assert_eq!(reports(&t, 16, 0x11000, 0x1000, 100), [(0x10000, 1)]);
        assert_eq!(reports(&t, 16, 0xff000, 0x10000, 100), [(0xf0000, 1)]);
        // Report limit from the spec: 65536 bytes = 524288 pages.
        let t = [r(0, 1 << 32)];
        let v = reports(&t, G4K, 0, 1 << 32, caps().report_pages(1 << 20));
        assert_eq!(v.len(), 2);
        assert!(v.iter().all(|&(_, n)| n as usize / 8 <= 65536));
        assert_eq!(v[1], (1 << 31, 524288));
        // Top of the address space.
        let t = [r(u64::MAX - 0x1fff, u64::MAX - 0xfff)];
        assert_eq!(
            reports(&t, G4K, u64::MAX - 0x1fff, 0x2000, 8),
            [(u64::MAX - 0x1fff, 1)]
        );
    }

    #[test]
    fn report_bitmap_len() {
        assert_eq!(ReportCmd { start: 0, npg: 1 }.bitmap_len(), 4);
        assert_eq!(ReportCmd { start: 0, npg: 32 }.bitmap_len(), 4);
        assert_eq!(ReportCmd { start: 0, npg: 33 }.bitmap_len(), 8);
    }

    fn runs(bm: &[u8], start: u64, npg: u32, gs: u8, iova: u64, len: u64) -> Vec<(u64, u64)> {
        let mut v = Vec::new();
        dirty_runs(bm, &ReportCmd { start, npg }, gs, iova, len, |s, l| {
            v.push((s, l))
        });
        v
    }

    #[test]
    fn bitmap_to_runs() {
        // Bits 0, 1, 2, 5, 8, 15, 16, 31 (byte 0: 0x27, byte 1: 0x81, byte 2: 1, byte 3: 0x80).
        let bm = [0x27u8, 0x81, 0x01, 0x80];
        assert_eq!(
            runs(&bm, 0x10000, 32, G4K, 0, u64::MAX),
            [
                (0x10000, 0x3000),
                (0x15000, 0x1000),
                (0x18000, 0x1000),
                (0x1f000, 0x2000),
                (0x2f000, 0x1000)
            ]
        );
        // Bits past NPG are ignored.
        assert_eq!(
            runs(&bm, 0, 16, G4K, 0, u64::MAX).last(),
            Some(&(0xf000, 0x1000))
        );
        // A run reaching the end of NPG.
        assert_eq!(runs(&[0xff], 0, 3, G4K, 0, u64::MAX), [(0, 0x3000)]);
        // Empty bitmap, short bitmap.
        assert!(runs(&[0; 8], 0, 64, G4K, 0, u64::MAX).is_empty());
        assert_eq!(runs(&[0x80], 0, 64, G4K, 0, u64::MAX), [(0x7000, 0x1000)]);
        // A clear byte between set bytes closes the run.
        assert_eq!(
            runs(&[0x80, 0, 0x01], 0, 24, G4K, 0, u64::MAX),
            [(0x7000, 0x1000), (0x10000, 0x1000)]
        );
        // A run across a byte boundary.
        assert_eq!(
            runs(&[0x80, 0x01], 0, 16, G4K, 0, u64::MAX),
            [(0x7000, 0x2000)]
        );
    }

    #[test]
    fn runs_clipped_to_request() {
        // 64 KiB granules; the request starts and ends inside them.
        let bm = [0b0000_0111u8];
        assert_eq!(
            runs(&bm, 0x100000, 8, 16, 0x108000, 0x20000),
            [(0x108000, 0x20000)]
        );
        assert_eq!(
            runs(&bm, 0x100000, 8, 16, 0x120000, 0x1000),
            [(0x120000, 0x1000)]
        );
        assert!(runs(&bm, 0x100000, 8, 16, 0x130000, 0x1000).is_empty());
        assert!(runs(&bm, 0x100000, 8, 16, 0, 0x100000).is_empty());
    }
}
