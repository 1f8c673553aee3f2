// SPDX-License-Identifier: GPL-2.0

//! The VFIO migration data file: an anonymous-inode stream file that serves
//! the saved stream to userspace (source, STOP_COPY) or collects the stream
//! userspace writes (destination, RESUMING).
//!
//! Locking: a [`MigFile`] is shared (through [`Arc`]) by the `struct file`
//! and the VF's migration state. Its buffer, position and `disabled` flag
//! live under its own mutex, which every read and write takes **before**
//! checking bounds and holds while copying to or from user memory. The VF's
//! state mutex is never held while this mutex copies to or from user memory
//! (the state machine only takes this mutex to take the collected bytes).
//!
//! Disabling never waits for that mutex: a reset disables the files from
//! `reset_done`, under vfio-pci-core's `memory_lock`, while a reader may hold
//! the file's mutex across a copy whose page fault on a VFIO BAR mapping
//! takes `memory_lock` (lockdep on the debug kernel: `memory_lock` -> file
//! mutex against file mutex -> `mmap_lock` -> `memory_lock`). So
//! [`MigFile::disable`] sets the atomic `dead` flag, which every access
//! checks under the mutex, and frees the buffer only if it gets the mutex
//! with a trylock; otherwise the buffer goes with the file.

use kernel::{
    alloc::KVVec,
    bindings,
    error::from_result,
    new_mutex,
    prelude::*,
    str::as_char_ptr_in_const_context,
    sync::{
        atomic::{
            Acquire,
            Atomic,
            Release, //
        },
        Arc,
        ArcBorrow,
        Mutex, //
    },
    types::ForeignOwnable,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

use crate::{
    protocol::stream::MAX_STREAM_LEN,
    sys::{
        self,
        AssertSync, //
    },
};

/// Direction of a migration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Source: userspace reads the saved stream.
    Save,
    /// Destination: userspace writes the stream.
    Resume,
}

/// The file's data, under [`MigFile::inner`].
pub(crate) struct MigBuf {
    /// The stream (complete for `Save`, growing for `Resume`).
    pub(crate) data: KVVec<u8>,
    /// Next byte to read (`Save`).
    pos: usize,
    /// Once set (reset, close, state change), every access fails.
    disabled: bool,
}

/// A migration data file.
#[pin_data]
pub(crate) struct MigFile {
    #[pin]
    inner: Mutex<MigBuf>,
    /// Set by [`MigFile::disable`] without taking `inner` (see the module
    /// docs); read under `inner` by every access.
    dead: Atomic<bool>,
}

impl MigFile {
    /// Creates the file object and the `struct file` for it, returning the
    /// shared object and the file (whose one reference goes to the caller).
    pub(crate) fn create(dir: Dir, data: KVVec<u8>) -> Result<(Arc<MigFile>, *mut bindings::file)> {
        let mf = Arc::pin_init(
            pin_init!(MigFile {
                inner <- new_mutex!(MigBuf {
                    data,
                    pos: 0,
                    disabled: false,
                }),
                dead: Atomic::new(false),
            }),
            GFP_KERNEL,
        )?;
        let (fops, flags) = match dir {
            Dir::Save => (&SAVE_FOPS.0, bindings::O_RDONLY),
            Dir::Resume => (&RESUME_FOPS.0, bindings::O_WRONLY),
        };
        let private = mf.clone().into_foreign();
        // SAFETY: `fops` is static; `private` is an `Arc` reference owned by
        // the file from now on and released in `release`.
        let filp = unsafe {
            sys::anon_inode_getfile(
                as_char_ptr_in_const_context(c"nvme_vfio_mig"),
                fops,
                private.cast(),
                flags as c_int,
            )
        };
        match kernel::error::from_err_ptr(filp) {
            Ok(f) => {
                // SAFETY: `f` is a new, valid file; `f_inode` is set.
                unsafe { sys::stream_open((*f).f_inode, f) };
                Ok((mf, f))
            }
            Err(e) => {
                // SAFETY: The file was not created, so the reference taken
                // for it is still ours to drop.
                drop(unsafe { Arc::<MigFile>::from_foreign(private) });
                Err(e)
            }
        }
    }

    /// Makes every later access fail, and frees the buffer unless an
    /// access holds it now (then it goes with the file). Never waits for the
    /// file's mutex, so it may run under `memory_lock` (see the module docs).
    pub(crate) fn disable(&self) {
        self.dead.store(true, Release);
        if let Some(mut g) = self.inner.try_lock() {
            g.disabled = true;
            g.data = KVVec::new();
            g.pos = 0;
        }
    }

    /// Whether accesses must fail; `g` is the held `inner`.
    fn gone(&self, g: &MigBuf) -> bool {
        g.disabled || self.dead.load(Acquire)
    }

    /// Takes the bytes written so far (destination), disabling the file.
    pub(crate) fn take(&self) -> Result<KVVec<u8>> {
        let mut g = self.inner.lock();
        if self.gone(&g) {
            return Err(ENODEV);
        }
        g.disabled = true;
        Ok(core::mem::take(&mut g.data))
    }

    fn read(&self, ubuf: *mut u8, len: usize) -> Result<isize> {
        let mut g = self.inner.lock();
        if self.gone(&g) {
            return Err(ENODEV);
        }
        let pos = g.pos;
        let n = len.min(g.data.len().saturating_sub(pos));
        if n == 0 {
            return Ok(0);
        }
        let mut w = UserSlice::new(UserPtr::from_ptr(ubuf.cast()), n).writer();
        w.write_slice(&g.data[pos..pos + n])?;
        g.pos = pos + n;
        Ok(n as isize)
    }

    fn write(&self, ubuf: *const u8, len: usize) -> Result<isize> {
        let mut g = self.inner.lock();
        if self.gone(&g) {
            return Err(ENODEV);
        }
        let start = g.data.len();
        let end = start.checked_add(len).ok_or(EOVERFLOW)?;
        if end as u64 > MAX_STREAM_LEN {
            return Err(EFBIG);
        }
        g.data.resize(end, 0, GFP_KERNEL)?;
        let r = UserSlice::new(UserPtr::from_ptr(ubuf.cast_mut().cast()), len)
            .reader()
            .read_slice(&mut g.data[start..end]);
        if let Err(e) = r {
            g.data.truncate(start);
            return Err(e);
        }
        Ok(len as isize)
    }
}

/// Runs `f` on the `MigFile` of a stream file: the shared prologue of the
/// `read` and `write` callbacks (stream files have no position, so the VFS
/// passes none).
///
/// # Safety
///
/// `filp` must be a file created by [`MigFile::create`] that is not yet
/// released.
unsafe fn with_file(
    filp: *mut bindings::file,
    pos: *mut bindings::loff_t,
    f: impl FnOnce(&MigFile) -> Result<isize>,
) -> isize {
    if !pos.is_null() {
        return ESPIPE.to_errno() as isize;
    }
    // SAFETY: `private_data` is the `Arc` given to the file at creation and
    // released only in `release` (the caller guarantees that has not run).
    let mf: ArcBorrow<'_, MigFile> = unsafe { Arc::<MigFile>::borrow((*filp).private_data.cast()) };
    from_result(|| f(&mf))
}

/// `read` of the save file.
///
/// # Safety
///
/// Called by the VFS on a file created by [`MigFile::create`].
unsafe extern "C" fn mig_read(
    filp: *mut bindings::file,
    buf: *mut c_char,
    len: usize,
    pos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: By the function's safety requirement.
    unsafe { with_file(filp, pos, |mf| mf.read(buf.cast(), len)) }
}

/// `write` of the resume file.
///
/// # Safety
///
/// Called by the VFS on a file created by [`MigFile::create`].
unsafe extern "C" fn mig_write(
    filp: *mut bindings::file,
    buf: *const c_char,
    len: usize,
    pos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: By the function's safety requirement.
    unsafe { with_file(filp, pos, |mf| mf.write(buf.cast(), len)) }
}

/// `release`: drop the file's reference. The data stays with the VF's
/// migration state: a VMM may close the resume fd before it moves the
/// device to STOP, and the state machine disables the file when it leaves
/// the data state.
///
/// # Safety
///
/// Called once by the VFS when the last reference to the file goes.
unsafe extern "C" fn mig_release(_inode: *mut bindings::inode, filp: *mut bindings::file) -> c_int {
    // SAFETY: The file owned this reference since `create`; this is the
    // only place it is released.
    drop(unsafe { Arc::<MigFile>::from_foreign((*filp).private_data.cast()) });
    0
}

static SAVE_FOPS: AssertSync<bindings::file_operations> = AssertSync(bindings::file_operations {
    owner: kernel::module::this_module::<crate::LocalModule>().as_ptr(),
    read: Some(mig_read),
    release: Some(mig_release),
    ..pin_init::zeroed()
});

static RESUME_FOPS: AssertSync<bindings::file_operations> = AssertSync(bindings::file_operations {
    owner: kernel::module::this_module::<crate::LocalModule>().as_ptr(),
    write: Some(mig_write),
    release: Some(mig_release),
    ..pin_init::zeroed()
});
