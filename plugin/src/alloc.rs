//! The component's allocator: size classes for small blocks in front of a general allocator.
//!
//! Nearly every allocation the plugin makes is small and short-lived (a URI's parts, its
//! parameters, an error message) and an instance lives for one script, so small blocks are
//! served from seven power-of-two size classes (16 bytes to 1 KiB) with a free list each: an
//! allocation pops a block (or carves one from a 64 KiB slab), a free pushes it back. Larger or
//! over-aligned blocks, and the slabs, come from the backing allocator (talc in the component).
//! Freed small blocks are kept by their class and never coalesced: memory is bounded by the
//! peak use of each class, and the instance's memory cap still applies.
//!
//! On the URI benchmark talc's allocate and free took about a fifth of the component's time;
//! popping and pushing a list head is a handful of instructions (docs/benchmarks.md).
//!
//! Not thread-safe: the component is single-threaded (`wasm32` without `atomics`), which is the
//! only place this is installed as the global allocator. Tests use an instance over `System`
//! from one thread.
#![allow(unsafe_code)] // A `GlobalAlloc` is unsafe by definition; every block is explained.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::ptr;

/// The smallest class: a free block holds the next pointer, and 16 covers every alignment the
/// plugin's types need.
const MIN: usize = 16;
/// Classes of 16, 32, …, 1024 bytes.
const CLASSES: usize = 7;
/// The largest size a class serves.
const MAX: usize = MIN << (CLASSES - 1);
/// What a class carves its new blocks from.
const SLAB: usize = 64 * 1024;

/// Size classes over `B`.
pub struct SizeClasses<B> {
    backing: B,
    state: UnsafeCell<State>,
}

struct State {
    /// Each class's free list: the first free block, whose first word points at the next.
    free: [*mut u8; CLASSES],
    /// The unused rest of the current slab.
    bump: *mut u8,
    end: *mut u8,
}

// SAFETY: instances are only used from one thread: the global allocator of a single-threaded
// wasm module, or a test's local instance. `Sync` is what `#[global_allocator]` requires.
unsafe impl<B: Sync> Sync for SizeClasses<B> {}

impl<B> SizeClasses<B> {
    /// Size classes in front of `backing`.
    pub const fn new(backing: B) -> Self {
        Self {
            backing,
            state: UnsafeCell::new(State {
                free: [ptr::null_mut(); CLASSES],
                bump: ptr::null_mut(),
                end: ptr::null_mut(),
            }),
        }
    }
}

/// The class of `layout`, if a class serves it.
fn class(layout: Layout) -> Option<usize> {
    if layout.size() > MAX || layout.align() > MIN {
        return None;
    }
    let size = layout.size().max(MIN).next_power_of_two();
    Some((size.trailing_zeros() - MIN.trailing_zeros()) as usize)
}

// SAFETY: every block handed out is `MIN << class` bytes (at least the layout's size) at an
// address aligned to `MIN` (slabs are `MIN`-aligned and carved in multiples of `MIN`), and is
// owned by the caller until it is freed; a freed block is reused only for the same class.
unsafe impl<B: GlobalAlloc> GlobalAlloc for SizeClasses<B> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(c) = class(layout) else {
            // SAFETY: forwarded with the caller's layout.
            return unsafe { self.backing.alloc(layout) };
        };
        // SAFETY: single-threaded (see `Sync`), and no reference into the state outlives this
        // call.
        let state = unsafe { &mut *self.state.get() };
        let head = state.free[c];
        if !head.is_null() {
            // SAFETY: `head` is a freed block of this class; its first word is the next link.
            state.free[c] = unsafe { head.cast::<*mut u8>().read() };
            return head;
        }
        let size = MIN << c;
        if (state.end as usize) - (state.bump as usize) < size {
            // SAFETY: a non-zero size and a power-of-two alignment.
            let slab = unsafe { self.backing.alloc(Layout::from_size_align_unchecked(SLAB, MIN)) };
            if slab.is_null() {
                return ptr::null_mut();
            }
            state.bump = slab;
            // SAFETY: one past the end of the slab just allocated.
            state.end = unsafe { slab.add(SLAB) };
        }
        let block = state.bump;
        // SAFETY: `size` bytes remain in the slab.
        state.bump = unsafe { block.add(size) };
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        let Some(c) = class(layout) else {
            // SAFETY: allocated by the backing allocator with this layout.
            return unsafe { self.backing.dealloc(block, layout) };
        };
        // SAFETY: single-threaded; the caller gives the block back, so it is ours to link.
        let state = unsafe { &mut *self.state.get() };
        // SAFETY: the block is at least `MIN` bytes and `MIN`-aligned, room for the link.
        unsafe { block.cast::<*mut u8>().write(state.free[c]) };
        state.free[c] = block;
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size`, rounded up to the alignment, fits `isize`.
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class(layout), class(new)) {
            // The block is big enough already.
            (Some(a), Some(b)) if a == b => block,
            // SAFETY: allocated by the backing allocator with `layout`.
            (None, None) => unsafe { self.backing.realloc(block, layout, new_size) },
            _ => {
                // SAFETY: `new` is non-zero (the caller's contract); the copy stays within
                // both blocks; the old block is freed with its own layout.
                unsafe {
                    let moved = self.alloc(new);
                    if !moved.is_null() {
                        ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                        self.dealloc(block, layout);
                    }
                    moved
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn classes_cover_small_aligned_layouts_only() {
        assert_eq!(class(layout(1, 1)), Some(0));
        assert_eq!(class(layout(16, 8)), Some(0));
        assert_eq!(class(layout(17, 8)), Some(1));
        assert_eq!(class(layout(1024, 16)), Some(6));
        assert_eq!(class(layout(1025, 1)), None);
        assert_eq!(class(layout(8, 32)), None);
    }

    /// Blocks never overlap, keep their bytes, are reused by their class and survive realloc
    /// across classes and to and from the backing allocator.
    #[test]
    fn blocks_are_disjoint_reused_and_moved_intact() {
        let heap = SizeClasses::new(System);
        let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
        // Sizes across every class and beyond, more than one slab's worth.
        for i in 0..3000usize {
            let l = layout(1 + (i * 37) % 1500, 1 << (i % 5));
            let p = unsafe { heap.alloc(l) };
            assert!(!p.is_null());
            assert_eq!(p as usize % l.align(), 0, "alignment of {l:?}");
            let fill = (i % 251) as u8;
            unsafe { ptr::write_bytes(p, fill, l.size()) };
            live.push((p, l, fill));
        }
        let mut spans: Vec<(usize, usize)> =
            live.iter().map(|(p, l, _)| (*p as usize, *p as usize + l.size())).collect();
        spans.sort();
        assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0), "two blocks overlap");

        // Free every other block; the class hands the same addresses out again.
        let mut freed = Vec::new();
        for (n, (p, l, _)) in live.iter().enumerate().filter(|(n, _)| n % 2 == 0) {
            unsafe { heap.dealloc(*p, *l) };
            freed.push((n, *p, *l));
        }
        let (_, p, l) = freed.last().copied().unwrap();
        if class(l).is_some() {
            assert_eq!(unsafe { heap.alloc(l) }, p, "the last freed block of a class comes first");
            unsafe { heap.dealloc(p, l) };
        }

        // The survivors kept their bytes; growing then shrinking keeps the common prefix.
        for (p, l, fill) in live.iter().skip(1).step_by(2) {
            let bytes = unsafe { std::slice::from_raw_parts(*p, l.size()) };
            assert!(bytes.iter().all(|b| b == fill), "a live block was overwritten");
            let grown = l.size() * 3 + 5;
            let q = unsafe { heap.realloc(*p, *l, grown) };
            let moved = unsafe { std::slice::from_raw_parts(q, l.size()) };
            assert!(moved.iter().all(|b| b == fill), "growing lost bytes");
            unsafe { ptr::write_bytes(q.add(l.size()), *fill, grown - l.size()) };
            let r = unsafe { heap.realloc(q, layout(grown, l.align()), 3) };
            let kept = unsafe { std::slice::from_raw_parts(r, 3) };
            assert!(kept.iter().all(|b| b == fill), "shrinking lost bytes");
            unsafe { heap.dealloc(r, layout(3, l.align())) };
        }
    }
}
