//! Memory that translated code reads and writes while the translation cache owns it:
//! exit slots, tier-up counters, the jump cache and access records.
//!
//! Translated code holds plain addresses into it, and the helpers it calls turn those
//! back into pointers, so Rust must never hold a reference to the whole of such memory
//! (a `Box`, a `&mut [T]`) that would claim it unaliased. Each allocation here is raw:
//! made with `Box::into_raw`, reached only through raw pointers (a reference lives only
//! inside one short call of the cache, while no translated code runs), and freed on
//! drop.

use std::ptr::NonNull;

/// A fixed array of `len` cells of `T` at a stable address.
pub struct SharedCells<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
}

impl<T: Copy> SharedCells<T> {
    /// `len` cells, each holding `init`.
    pub fn new(len: usize, init: T) -> SharedCells<T> {
        let raw = Box::into_raw(vec![init; len].into_boxed_slice());
        // SAFETY: `Box::into_raw` never returns null.
        let ptr = unsafe { NonNull::new_unchecked(raw.cast::<T>()) };
        SharedCells { ptr, len }
    }

    /// The address of cell `i` (what translated code is given).
    pub fn cell(&self, i: usize) -> *mut T {
        assert!(i < self.len, "cell {i} of {}", self.len);
        // SAFETY: `i` is in bounds of the allocation.
        unsafe { self.ptr.as_ptr().add(i) }
    }

    /// The address of the first cell.
    pub fn base(&self) -> *mut T {
        self.ptr.as_ptr()
    }

    pub fn get(&self, i: usize) -> T {
        // SAFETY: an in-bounds cell of a live allocation; translated code does not run
        // while the cache reads (one thread, between entries).
        unsafe { self.cell(i).read() }
    }

    pub fn set(&self, i: usize, value: T) {
        // SAFETY: as in `get`.
        unsafe { self.cell(i).write(value) }
    }

    /// Sets every cell to `value`.
    pub fn fill(&self, value: T) {
        for i in 0..self.len {
            self.set(i, value);
        }
    }
}

impl<T: Copy> Drop for SharedCells<T> {
    fn drop(&mut self) {
        let slice = std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len);
        // SAFETY: the allocation made in `new`, freed once; nothing uses it any more
        // (its owner, the cache, goes away only when no translated code can run).
        drop(unsafe { Box::from_raw(slice) });
    }
}

/// One `T` at a stable address (an access record).
pub struct SharedBox<T> {
    ptr: NonNull<T>,
}

impl<T> SharedBox<T> {
    pub fn new(value: T) -> SharedBox<T> {
        // SAFETY: `Box::into_raw` never returns null.
        SharedBox { ptr: unsafe { NonNull::new_unchecked(Box::into_raw(Box::new(value))) } }
    }

    /// The address translated code is given.
    pub fn addr(&self) -> *mut T {
        self.ptr.as_ptr()
    }

    pub fn get(&self) -> &T {
        // SAFETY: a live allocation; translated code and the helpers, the only other
        // users of its address, do not run while the cache holds this reference (one
        // thread, between entries).
        unsafe { self.ptr.as_ref() }
    }

    pub fn get_mut(&mut self) -> &mut T {
        // SAFETY: as in `get`; `&mut self` makes this the only reference Rust holds.
        unsafe { self.ptr.as_mut() }
    }
}

impl<T> Drop for SharedBox<T> {
    fn drop(&mut self) {
        // SAFETY: the allocation made in `new`, freed once (see `SharedCells::drop`).
        drop(unsafe { Box::from_raw(self.ptr.as_ptr()) });
    }
}
