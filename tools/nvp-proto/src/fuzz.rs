// SPDX-License-Identifier: GPL-2.0

//! Entry points of the libFuzzer targets in `tools/fuzz/` and of the host
//! test that replays their regression inputs (`tests/fuzz_regressions.rs`).
//!
//! The protocol module's items are `pub(crate)`; these functions are the
//! public doors the fuzz crate goes through. Each checks properties with
//! `assert!`, so a broken property is a panic, which libFuzzer reports as a
//! crash and saves the input.
//!
//! - [`stream`]: the bytes go to the migration-stream parser, and what it
//!   accepts is walked the way the destination's resume path walks it
//!   (`rust/protocol/dest.rs`, the same code as the driver's RESUMING →
//!   STOP check). The same bytes
//!   then describe a valid stream that is built with the `Writer`, parsed
//!   back and compared; every truncation of it must be refused, and so must
//!   every byte flip (CRC-32C), or else yield identical content.
//! - [`tp4159`]: the bytes go to the TP4159 state decoders the resume path
//!   and PF discovery use (Controller State header, NVMe Controller State
//!   v0, Supported Controller State Formats), and the encoders' output must
//!   decode back to what was encoded.

use crate::protocol::{
    dest,
    stream::{
        self, sec, Identity, Stream, StreamError, Writer, HDR_LEN, IDENTITY_LEN, KNOWN_FLAGS,
        MAX_STREAM_LEN, SEC_CRITICAL, SEC_HDR_LEN,
    },
    tp4159::{
        encode_nvme_state, CqState, NvmeState, SqState, StateFormats, StateHeader,
        NVME_STATE_HDR_LEN, QUEUE_ENTRY_LEN, STATE_HDR_LEN,
    },
    VENDOR_STATE_UUID,
};

/// Fuzz target `stream`: [`parse_stream`] on `data` and on `data` with
/// its length, section count, END header and checksum made right
/// ([`reseal`], so that mutations get past the CRC to the sections'
/// semantics and the resume walk), then [`round_trip`].
pub fn stream(data: &[u8]) {
    parse_stream(data);
    if let Some(b) = reseal(data) {
        parse_stream(&b);
    }
    round_trip(data);
}

/// `data` with its header's total length and section count, its last 16
/// bytes as an END section and the CRC-32C recomputed; `None` if `data`
/// is too short or not a whole number of 8-byte units.
pub fn reseal(data: &[u8]) -> Option<Vec<u8>> {
    let n = data.len();
    if n < HDR_LEN + SEC_HDR_LEN + 8 || n % 8 != 0 || n as u64 > MAX_STREAM_LEN {
        return None;
    }
    let mut b = data.to_vec();
    let end = n - SEC_HDR_LEN - 8;
    b[16..24].copy_from_slice(&(n as u64).to_le_bytes());
    // Count the sections the way the parser walks them, if they lead to END.
    let (mut pos, mut count) = (HDR_LEN, 1u32);
    while pos < end {
        let len = u32::from_le_bytes([b[pos + 4], b[pos + 5], b[pos + 6], b[pos + 7]]);
        pos = pos + SEC_HDR_LEN + (len as usize).div_ceil(8) * 8;
        count += 1;
    }
    if pos == end {
        b[24..28].copy_from_slice(&count.to_le_bytes());
    }
    b[end..end + 2].copy_from_slice(&sec::END.to_le_bytes());
    b[end + 2..end + 4].copy_from_slice(&SEC_CRITICAL.to_le_bytes());
    b[end + 4..end + 8].copy_from_slice(&8u32.to_le_bytes());
    let crc = stream::crc32c(0, &b[..end + SEC_HDR_LEN]);
    b[end + 8..end + 12].copy_from_slice(&crc.to_le_bytes());
    b[end + 12..end + 16].fill(0);
    Some(b)
}

/// Fuzz target `tp4159`: [`decode_state`] and [`encode_state`] on `data`.
pub fn tp4159(data: &[u8]) {
    decode_state(data);
    encode_state(data);
}

/// Reads fuzz input as a sequence of values; past the end, zeros.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn u32(&mut self) -> u32 {
        u32::from(self.u16()) | (u32::from(self.u16()) << 16)
    }

    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }

    fn uuid(&mut self) -> [u8; 16] {
        let mut u = [0u8; 16];
        for b in &mut u {
            *b = self.u8();
        }
        u
    }

    /// Up to `n` bytes (fewer at the end of the input).
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
}

/// What the destination's `check_stream` compares a stream with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dest {
    /// PCI vendor, device, subsystem vendor, subsystem device of the VF.
    pub ids: (u16, u16, u16, u16),
    /// VQ resources assigned to the VF.
    pub nvq: u16,
    /// VI resources assigned to the VF.
    pub nvi: u16,
    /// MDTS of the destination PF in bytes (`None`: no limit).
    pub mdts: Option<u64>,
    /// CSUUIDI of the device model's vendor state, if the PF offers it.
    pub csuuidi: Option<u8>,
}

/// The destination's stream check (`rust/protocol/dest.rs`, which the
/// driver's RESUMING → STOP arc runs), with a malformed stream reported as
/// `"malformed migration stream"` as the driver does.
pub fn check_stream<'a>(data: &'a [u8], dest: &Dest) -> Result<(&'a [u8], u8), &'static str> {
    let d = dest::Dest {
        ids: dest.ids,
        nvq: dest.nvq,
        nvi: dest.nvi,
        mdts: dest.mdts,
        csuuidi: dest.csuuidi,
    };
    dest::check_stream(data, &d).map_err(|r| match r {
        dest::Refusal::Stream(_) => "malformed migration stream",
        dest::Refusal::Unfit(why) => why,
    })
}

/// The NVMe part of a Controller State (`rust/protocol/dest.rs`).
fn nvme_part(state: &[u8]) -> Result<NvmeState<'_>, &'static str> {
    dest::nvme_part(state)
}

/// Whether two parsed streams carry the same content.
fn same(a: &Stream<'_>, b: &Stream<'_>) -> bool {
    a.flags == b.flags
        && a.identity == b.identity
        && a.nvme_state == b.nvme_state
        && a.vendor == b.vendor
}

/// Whether `inner` lies within `outer` (the parser hands out sub-slices).
fn within(outer: &[u8], inner: &[u8]) -> bool {
    let o = outer.as_ptr_range();
    let i = inner.as_ptr_range();
    o.start <= i.start && i.end <= o.end
}

/// One section to write: type, flags, payload as concatenated parts.
#[derive(Clone, Copy)]
struct Sec<'a> {
    ty: u16,
    flags: u16,
    parts: [&'a [u8]; 2],
}

/// Writes `secs` and END into `buf`; the stream length, `None` where the
/// `Writer` refuses (too small a buffer).
fn write_into(buf: &mut [u8], secs: &[Sec<'_>]) -> Option<usize> {
    let mut w = Writer::new(buf)?;
    for s in secs {
        w.section(s.ty, s.flags, &s.parts)?;
    }
    w.finish(0)
}

/// Builds a stream of `secs` into a buffer of exactly the size the
/// `Writer` asks for, pre-filled with garbage so that any byte the writer
/// forgets (padding) shows; checks that a buffer a little too small is
/// refused without a panic.
fn build(secs: &[Sec<'_>], short: usize) -> Vec<u8> {
    let lens: Vec<usize> = secs
        .iter()
        .map(|s| s.parts[0].len() + s.parts[1].len())
        .collect();
    let n = Writer::size_for(&lens).expect("size_for of a small stream");
    assert_eq!(n % 8, 0);
    let mut buf = vec![0xa5u8; n];
    assert_eq!(
        write_into(&mut buf, secs),
        Some(n),
        "writer refused its own size"
    );
    let mut small = vec![0u8; n.saturating_sub(short.max(1))];
    assert_eq!(
        write_into(&mut small, secs),
        None,
        "writer overran its buffer"
    );
    buf
}

/// Parses `data` as a complete migration stream; when it is accepted,
/// checks the parser's invariants and walks it as the resume path does.
/// Returns whether the stream was accepted.
pub fn parse_stream(data: &[u8]) -> bool {
    let dl = stream::declared_len(data);
    if let Ok(n) = dl {
        assert!((HDR_LEN + SEC_HDR_LEN + 8) as u64 <= n && n <= MAX_STREAM_LEN);
        // The header alone is enough to know the length.
        assert_eq!(stream::declared_len(&data[..HDR_LEN]), dl);
    }
    let s = match stream::parse(data) {
        Ok(s) => s,
        Err(e) => {
            // A header refused alone is refused for the same reason whole.
            if let Err(d) = dl {
                assert_eq!(e, d);
            }
            return false;
        }
    };
    assert_eq!(
        dl,
        Ok(data.len() as u64),
        "accepted stream of another length"
    );
    assert_eq!(data.len() % 8, 0, "sections are padded to 8 bytes");
    assert_eq!(s.flags & !KNOWN_FLAGS, 0);
    let id = s.identity;
    assert_eq!(id.rsvd, 0);
    assert_eq!(Identity::parse(&id.encode()), Ok(id));
    if let Some(st) = s.nvme_state {
        assert!(within(data, st));
    }
    if let Some((_, v)) = s.vendor {
        assert!(within(data, v));
    }

    // The resume path: a destination that matches the source's PCI IDs
    // and has room for anything, and one whose IDs differ.
    let dest = Dest {
        ids: (id.vendor, id.device, id.subvendor, id.subdevice),
        nvq: u16::MAX,
        nvi: u16::MAX,
        mdts: None,
        csuuidi: Some(1),
    };
    match check_stream(data, &dest) {
        Ok((state, csuuidi)) => {
            assert_eq!(Some(state), s.nvme_state);
            assert!(csuuidi <= 1);
            let nv = nvme_part(state).expect("check_stream accepted it");
            assert!(nv.sq(nv.niosq).is_none() && nv.cq(nv.niocq).is_none());
            // A destination with exactly the resources the identity says.
            let tight = Dest {
                nvq: id.max_qid.saturating_add(1),
                nvi: id.nvectors,
                ..dest
            };
            if id.max_qid < u16::MAX {
                assert!(check_stream(data, &tight).is_ok());
            }
        }
        Err(why) => {
            // Only the state itself or its identity can be wrong here.
            assert!(
                s.nvme_state.is_none()
                    || nvme_part(s.nvme_state.unwrap_or(&[])).is_err()
                    || why.starts_with("identity does not match")
                    || why.starts_with("destination VF has too few queue")
                    || why.starts_with("unknown vendor state UUID")
                    || why.starts_with("vendor section UUID"),
                "unexpected refusal: {}",
                why
            );
        }
    }
    let other = Dest {
        ids: (id.vendor ^ 1, id.device, id.subvendor, id.subdevice),
        ..dest
    };
    assert_eq!(
        check_stream(data, &other),
        Err("source VF has different PCI IDs")
    );

    // What the parser accepted, written again, reads back the same and is
    // no longer than the input (which had at least these sections).
    let idb = id.encode();
    let mut secs = vec![Sec {
        ty: sec::IDENTITY,
        flags: SEC_CRITICAL,
        parts: [&idb, &[]],
    }];
    if let Some(st) = s.nvme_state {
        secs.push(Sec {
            ty: sec::NVME_STATE,
            flags: SEC_CRITICAL,
            parts: [st, &[]],
        });
    }
    let vu;
    if let Some((u, v)) = s.vendor {
        vu = u;
        secs.push(Sec {
            ty: sec::VENDOR_STATE,
            flags: SEC_CRITICAL,
            parts: [&vu, v],
        });
    }
    let again = build(&secs, 1);
    assert!(again.len() <= data.len());
    let s2 = stream::parse(&again).expect("re-written stream refused");
    assert!(same(&s, &s2));
    true
}

/// Builds a valid stream from sections described by `data`, parses it
/// back and compares; then every truncation, an extension and byte flips
/// of it.
pub fn round_trip(data: &[u8]) {
    // Any 48 bytes Identity accepts have exactly one encoding.
    if let Some(b) = data.get(..IDENTITY_LEN) {
        if let Ok(i) = Identity::parse(b) {
            assert_eq!(&i.encode()[..], b);
        }
    }

    let mut r = Bytes(data);
    let ctl = r.u8();
    let id = Identity {
        vendor: r.u16(),
        device: r.u16(),
        subvendor: r.u16(),
        subdevice: r.u16(),
        scid: r.u16(),
        nvq: r.u16(),
        nvi: r.u16(),
        max_qid: r.u16(),
        nvectors: r.u16(),
        rsvd: 0,
        mdts: r.u64(),
        vendor_uuid: r.uuid(),
    };
    let idb = id.encode();
    assert_eq!(Identity::parse(&idb), Ok(id));
    let mut secs = vec![Sec {
        ty: sec::IDENTITY,
        flags: r.u16(),
        parts: [&idb, &[]],
    }];
    let mut state = None;
    if ctl & 1 != 0 {
        let n = usize::from(r.u16() % 2048);
        let st = r.take(n);
        state = Some(st);
        secs.push(Sec {
            ty: sec::NVME_STATE,
            flags: r.u16(),
            parts: [st, &[]],
        });
    }
    let vu = r.uuid();
    let mut vendor = None;
    if ctl & 2 != 0 {
        let n = usize::from(r.u16() % 512);
        let v = r.take(n);
        vendor = Some((vu, v));
        secs.push(Sec {
            ty: sec::VENDOR_STATE,
            flags: r.u16(),
            parts: [&vu, v],
        });
    }
    // Up to three sections of types the reader does not know, anywhere.
    for _ in 0..(ctl >> 2) & 3 {
        let mut ty = r.u16();
        if matches!(
            ty,
            sec::IDENTITY | sec::NVME_STATE | sec::VENDOR_STATE | sec::END
        ) {
            ty ^= 0x8000;
        }
        let flags = r.u16();
        let n = usize::from(r.u8());
        let payload = r.take(n);
        let at = usize::from(r.u8()) % (secs.len() + 1);
        secs.insert(
            at,
            Sec {
                ty,
                flags,
                parts: [payload, &[]],
            },
        );
    }
    if ctl & 0x10 != 0 {
        secs.rotate_left(1);
    }
    let expect = secs
        .iter()
        .find(|s| {
            !matches!(s.ty, sec::IDENTITY | sec::NVME_STATE | sec::VENDOR_STATE)
                && s.flags & SEC_CRITICAL != 0
        })
        .map_or(Ok(()), |s| Err(StreamError::UnknownCritical(s.ty)));

    let b = build(&secs, usize::from(r.u8()));
    let parsed = stream::parse(&b);
    match expect {
        Ok(()) => {
            let s = parsed.expect("valid stream refused");
            assert_eq!(s.flags, 0);
            assert_eq!(s.identity, id);
            assert_eq!(s.nvme_state, state);
            assert_eq!(s.vendor, vendor);
        }
        Err(e) => assert_eq!(parsed.unwrap_err(), e),
    }
    assert_eq!(parse_stream(&b), expect.is_ok());
    let orig = parsed.ok();

    // Every truncation is refused as such, and so is anything longer.
    for k in 0..b.len() {
        assert_eq!(stream::parse(&b[..k]).unwrap_err(), StreamError::Truncated);
    }
    let mut longer = b.clone();
    longer.extend_from_slice(r.take(8));
    longer.push(0);
    assert_eq!(stream::parse(&longer).unwrap_err(), StreamError::TooLong);

    // A changed byte is refused, or reads as the very same content.
    let mask = match r.u8() {
        0 => 0x01,
        m => m,
    };
    let step = b.len().div_ceil(1024);
    let mut c = b.clone();
    for i in (0..b.len()).step_by(step) {
        c[i] ^= mask.rotate_left(i as u32 % 8);
        match (stream::parse(&c), &orig) {
            (Err(_), _) => {}
            (Ok(s), Some(o)) => assert!(same(&s, o), "byte {} flip accepted", i),
            (Ok(_), None) => panic!("byte {} flip made a refused stream valid", i),
        }
        c[i] = b[i];
    }
}

/// Feeds `data` to every TP4159 state decoder and checks their invariants.
/// Returns whether the resume path would take it as a Controller State.
pub fn decode_state(data: &[u8]) -> bool {
    if let Ok(h) = StateHeader::parse(data) {
        let t = h.total_len().expect("parse checks the total");
        assert!(t >= STATE_HDR_LEN as u64);
        assert_eq!(StateHeader::parse(&h.encode()), Ok(h));
        assert_eq!(h.suspended(), data[2] & 1 != 0);
    } else {
        assert!(nvme_part(data).is_err());
    }

    // Alone, as an NVMe Controller State: every entry decodes, none past.
    if let Ok(nv) = NvmeState::parse(data) {
        let n = usize::from(nv.niosq) + usize::from(nv.niocq);
        assert_eq!(data.len(), NVME_STATE_HDR_LEN + QUEUE_ENTRY_LEN * n);
        let sqs: Vec<SqState> = (0..nv.niosq).map(|i| nv.sq(i).expect("in range")).collect();
        let cqs: Vec<CqState> = (0..nv.niocq).map(|i| nv.cq(i).expect("in range")).collect();
        assert!(nv.sq(nv.niosq).is_none() && nv.cq(nv.niocq).is_none());
        let mut out = vec![0u8; data.len()];
        assert_eq!(encode_nvme_state(&sqs, &cqs, &mut out), Some(data.len()));
        let again = NvmeState::parse(&out).expect("re-encoded state refused");
        assert_eq!((again.niosq, again.niocq), (nv.niosq, nv.niocq));
        for (i, q) in sqs.iter().enumerate() {
            assert_eq!(again.sq(i as u16).as_ref(), Some(q));
        }
        for (i, q) in cqs.iter().enumerate() {
            assert_eq!(again.cq(i as u16).as_ref(), Some(q));
        }
    }

    // Supported Controller State Formats: every index in and out of range.
    if let Ok(f) = StateFormats::parse(data) {
        for k in 0..=u8::MAX {
            let v = f.version(k);
            assert_eq!(v.is_some(), k >= 1 && k <= f.nv);
            if let Some(v) = v {
                let j = f.csvi_of(v).expect("a listed version has an index");
                assert!(j <= k && f.version(j) == Some(v));
            }
            let u = f.uuid(k);
            assert_eq!(u.is_some(), k >= 1 && k <= f.nuuid);
            if let Some(u) = u {
                let j = f.csuuidi_of(&u).expect("a listed UUID has an index");
                assert!(j <= k && f.uuid(j) == Some(u));
            }
        }
    }

    // As the resume path reads it.
    match nvme_part(data) {
        Ok(nv) => {
            let (max_qid, _) = dest::queue_needs(&nv);
            for i in 0..nv.niosq {
                assert!(nv.sq(i).is_some_and(|q| q.qid <= max_qid));
            }
            true
        }
        Err(_) => false,
    }
}

/// Encodes TP4159 structures described by `data` and decodes them back.
pub fn encode_state(data: &[u8]) {
    let mut r = Bytes(data);
    let h = StateHeader {
        ver: r.u16(),
        csattr: r.u8(),
        nvmecss: r.u64(),
        vss: r.u64(),
    };
    match StateHeader::parse(&h.encode()) {
        Ok(p) => assert_eq!(p, h),
        Err(_) => assert!(h.total_len().is_none()),
    }
    let nsq = usize::from(r.u8() % 32);
    let ncq = usize::from(r.u8() % 32);
    let sqs: Vec<SqState> = (0..nsq)
        .map(|_| SqState {
            prp1: r.u64(),
            qsize: r.u16(),
            qid: r.u16(),
            cqid: r.u16(),
            attr: r.u16(),
            head: r.u16(),
            tail: r.u16(),
        })
        .collect();
    let cqs: Vec<CqState> = (0..ncq)
        .map(|_| CqState {
            prp1: r.u64(),
            qsize: r.u16(),
            qid: r.u16(),
            head: r.u16(),
            tail: r.u16(),
            attr: r.u32(),
        })
        .collect();
    let n = NVME_STATE_HDR_LEN + QUEUE_ENTRY_LEN * (nsq + ncq);
    // A whole Controller State (with `vss` dwords of vendor state after).
    let vss = usize::from(r.u8());
    let mut st = vec![0xa5u8; STATE_HDR_LEN + n + 4 * vss];
    let hdr = StateHeader {
        ver: 0,
        csattr: 1,
        nvmecss: (n / 4) as u64,
        vss: vss as u64,
    };
    st[..STATE_HDR_LEN].copy_from_slice(&hdr.encode());
    let short = usize::from(r.u8()) % (n + 1);
    if short > 0 {
        let mut small = vec![0u8; n - short];
        assert_eq!(encode_nvme_state(&sqs, &cqs, &mut small), None);
    }
    assert_eq!(
        encode_nvme_state(&sqs, &cqs, &mut st[STATE_HDR_LEN..]),
        Some(n)
    );
    let nv = nvme_part(&st).expect("encoded Controller State refused");
    assert_eq!((usize::from(nv.niosq), usize::from(nv.niocq)), (nsq, ncq));
    for (i, q) in sqs.iter().enumerate() {
        assert_eq!(nv.sq(i as u16).as_ref(), Some(q));
    }
    for (i, q) in cqs.iter().enumerate() {
        assert_eq!(nv.cq(i as u16).as_ref(), Some(q));
        assert_eq!(q.iv(), (q.attr >> 16) as u16);
    }
    assert!(decode_state(&st));
    // One dword more or less than the header says is refused.
    assert!(nvme_part(&st[..st.len() - 4]).is_err());
}

/// The seed inputs: valid streams and TP4159 structures, as
/// `(target, name, bytes)`. `examples/fuzz-seeds.rs` writes them and
/// `tools/fuzz/regressions/` holds them.
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let sq = |qid: u16| SqState {
        prp1: 0x1000 * u64::from(qid),
        qsize: 63,
        qid,
        cqid: qid,
        attr: 1 | (2 << 1),
        head: 5,
        tail: 9,
    };
    let cq = |qid: u16, iv: u16| CqState {
        prp1: 0x2000 * u64::from(qid),
        qsize: 63,
        qid,
        head: 4,
        tail: 5,
        attr: (u32::from(iv) << 16) | 4 | 2 | 1,
    };
    // A Controller State as Migration Receive returns it.
    let state = |sqs: &[SqState], cqs: &[CqState], vendor: &[u8]| {
        let n = NVME_STATE_HDR_LEN + QUEUE_ENTRY_LEN * (sqs.len() + cqs.len());
        let mut b = vec![0u8; STATE_HDR_LEN + n];
        let h = StateHeader {
            ver: 0,
            csattr: 1,
            nvmecss: (n / 4) as u64,
            vss: (vendor.len() / 4) as u64,
        };
        b[..STATE_HDR_LEN].copy_from_slice(&h.encode());
        encode_nvme_state(sqs, cqs, &mut b[STATE_HDR_LEN..]).expect("room");
        b.extend_from_slice(vendor);
        b
    };
    // A stream as the source driver writes it (IDENTITY, NVME_STATE, END)
    // with the identity the state implies, plus optional extra sections.
    let mk_stream = |st: &[u8], vendor_uuid: [u8; 16], extra: &[Sec<'_>]| {
        let nv = nvme_part(st).expect("seed state");
        let (max_qid, nvectors) = dest::queue_needs(&nv);
        let id = Identity {
            vendor: 0x1b36,
            device: 0x0010,
            subvendor: 0x1af4,
            subdevice: 0x1100,
            scid: 1,
            nvq: 2,
            nvi: 1,
            max_qid,
            nvectors,
            rsvd: 0,
            mdts: 512 * 1024,
            vendor_uuid,
        }
        .encode();
        let mut secs = vec![
            Sec {
                ty: sec::IDENTITY,
                flags: SEC_CRITICAL,
                parts: [&id, &[]],
            },
            Sec {
                ty: sec::NVME_STATE,
                flags: SEC_CRITICAL,
                parts: [st, &[]],
            },
        ];
        secs.extend_from_slice(extra);
        build(&secs, 1)
    };

    let one = state(&[sq(1)], &[cq(1, 0)], &[]);
    let vendor_bytes: Vec<u8> = (0..64u8).collect();
    let with_vendor = state(&[sq(1)], &[cq(1, 0)], &vendor_bytes);
    let four = state(
        &[sq(1), sq(2), sq(3), sq(4)],
        &[cq(1, 0), cq(2, 1), cq(3, 2), cq(4, 3)],
        &[],
    );
    let bare = state(&[], &[], &[]);
    let mut formats = vec![2u8, 1, 0, 0, 7, 0];
    formats.extend_from_slice(&VENDOR_STATE_UUID);

    let v = vec![
        ("stream", "seed-driver-1q", mk_stream(&one, [0; 16], &[])),
        (
            "stream",
            "seed-driver-vendor",
            mk_stream(&with_vendor, VENDOR_STATE_UUID, &[]),
        ),
        (
            "stream",
            "seed-vendor-section",
            mk_stream(
                &one,
                VENDOR_STATE_UUID,
                &[Sec {
                    ty: sec::VENDOR_STATE,
                    flags: SEC_CRITICAL,
                    parts: [&VENDOR_STATE_UUID, &vendor_bytes],
                }],
            ),
        ),
        ("stream", "seed-driver-4q", mk_stream(&four, [0; 16], &[])),
        ("stream", "seed-no-queues", mk_stream(&bare, [0; 16], &[])),
        (
            "stream",
            "seed-unknown-section",
            mk_stream(
                &one,
                [0; 16],
                &[Sec {
                    ty: 0x99,
                    flags: 0,
                    parts: [b"skipped", &[]],
                }],
            ),
        ),
        ("tp4159", "seed-state-1q", one.clone()),
        ("tp4159", "seed-state-vendor", with_vendor.clone()),
        ("tp4159", "seed-state-4q", four.clone()),
        (
            "tp4159",
            "seed-nvme-state-4q",
            four[STATE_HDR_LEN..].to_vec(),
        ),
        ("tp4159", "seed-formats", formats),
    ];
    // Every stream seed is one the resume path accepts.
    for (t, n, b) in &v {
        if *t == "stream" {
            assert!(parse_stream(b), "seed {} refused", n);
        }
    }
    v.into_iter()
        .map(|(t, n, b)| (t, n.to_string(), b))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_pass_the_targets() {
        for (t, _, b) in seeds() {
            match t {
                "stream" => stream(&b),
                _ => tp4159(&b),
            }
        }
        for (_, n, b) in seeds().iter().filter(|s| s.0 == "stream") {
            assert_eq!(reseal(b).as_ref(), Some(b), "{}", n);
            let mut c = b.clone();
            c[20] ^= 1;
            c[24] ^= 1;
            c[40] ^= 0x80;
            assert_eq!(stream::parse(&c).unwrap_err(), StreamError::TooLong);
            assert!(!parse_stream(&c));
            let c = reseal(&c).unwrap();
            assert!(parse_stream(&c), "{}", n);
            assert_eq!(stream::parse(&c).unwrap().identity.vendor, 0x1bb6);
        }
        for (_, n, b) in seeds().iter().filter(|s| s.1.starts_with("seed-state")) {
            assert!(decode_state(b), "{}", n);
        }
    }

    #[test]
    fn empty_and_short_inputs() {
        for n in 0..64 {
            let b = vec![0u8; n];
            stream(&b);
            tp4159(&b);
            let b = vec![0xffu8; n];
            stream(&b);
            tp4159(&b);
        }
    }

    #[test]
    fn resume_check_mirrors_the_driver() {
        let s = seeds();
        let b = &s.iter().find(|x| x.1 == "seed-driver-4q").unwrap().2;
        let dest = Dest {
            ids: (0x1b36, 0x0010, 0x1af4, 0x1100),
            nvq: 5,
            nvi: 4,
            mdts: Some(512 * 1024),
            csuuidi: None,
        };
        assert!(check_stream(b, &dest).is_ok());
        let few_vq = Dest { nvq: 4, ..dest };
        assert!(check_stream(b, &few_vq).unwrap_err().contains("(VQ)"));
        let few_vi = Dest { nvi: 3, ..dest };
        assert!(check_stream(b, &few_vi).unwrap_err().contains("(VI)"));
        let small_mdts = Dest {
            mdts: Some(4096),
            ..dest
        };
        assert!(check_stream(b, &small_mdts).unwrap_err().contains("MDTS"));
        let b = &s.iter().find(|x| x.1 == "seed-driver-vendor").unwrap().2;
        assert!(check_stream(b, &dest).unwrap_err().contains("vendor state"));
        let with_vendor = Dest {
            csuuidi: Some(3),
            ..dest
        };
        assert_eq!(check_stream(b, &with_vendor).unwrap().1, 3);
    }
}
