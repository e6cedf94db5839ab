//! Values computed once from a `'static` source (a struct's field name,
//! its list of fields) and kept for the life of the program, found again
//! by the source's address.
//!
//! A camelizing endpoint converts the same field names on every frame;
//! computing each conversion once and looking it up costs a few
//! instructions instead (`examples/echo_cost.rs camel` under callgrind).
//! A program has as many such sources as it has struct fields, so keeping
//! every value forever (leaking it) is bounded; in exchange, lookups hand
//! out plain `&'static` references: no reference count, no lock on the
//! per-thread path. (Two limits of keying by address: names leaked at run
//! time, one per call, would grow the registry without bound, and a
//! library unloaded with `dlclose` could let another name take an address
//! again. serde's derived names are neither.)

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

/// Slots of a per-thread cache.
const SLOTS: usize = 64;

/// Slots looked at for one source, from its own.
const PROBES: usize = 4;

/// What identifies a `'static` source: its address and size in bytes (a
/// `'static` value never moves, and two sources at one address with one
/// size are the same bytes).
type Source = (usize, usize);

/// A source's slot in a thread's cache: a multiplicative hash of its
/// address and length, since a struct's field names are bytes apart in
/// the binary (a slot from the address's low bits alone would send
/// neighbours to one slot, and every frame to the shared registry).
#[inline]
fn slot_of((address, len): Source) -> usize {
    let mixed = (address ^ len.rotate_left(16)).wrapping_mul(0x9E37_79B9);
    // The top bits of the low word, which the multiplication mixes best.
    (mixed >> (32 - SLOTS.trailing_zeros())) % SLOTS
}

/// The values of every source seen so far, shared by all threads.
pub(crate) struct Registry<T: ?Sized + 'static>(Mutex<BTreeMap<Source, &'static T>>);

impl<T: ?Sized + 'static> Registry<T> {
    /// An empty registry, for a `static`.
    pub(crate) const fn new() -> Self {
        Registry(Mutex::new(BTreeMap::new()))
    }

    fn get_or_insert(&self, source: Source, compute: impl FnOnce() -> &'static T) -> &'static T {
        let mut values = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        values.entry(source).or_insert_with(compute)
    }
}

/// A thread's cache in front of a [`Registry`], open addressing over a
/// fixed table: when the few slots a source may take are all held by
/// others, the last source asked for takes its own slot.
pub(crate) struct ThreadCache<T: ?Sized + 'static>([Cell<Option<(Source, &'static T)>>; SLOTS]);

impl<T: ?Sized + 'static> ThreadCache<T> {
    /// An empty cache, for a `thread_local!`.
    pub(crate) const fn new() -> Self {
        ThreadCache([const { Cell::new(None) }; SLOTS])
    }

    /// The value for `source` (a `'static` string or slice, known by its
    /// address and size), from this cache, else from `registry`, else
    /// computed by `compute` (once per program) and leaked. Inlined up to
    /// the first slot's check: this runs for every field of every
    /// camelized frame.
    #[inline]
    pub(crate) fn get<S: ?Sized>(
        &self,
        source: &'static S,
        registry: &Registry<T>,
        compute: impl FnOnce() -> Box<T>,
    ) -> &'static T {
        let source = (
            std::ptr::from_ref(source).cast::<u8>() as usize,
            std::mem::size_of_val(source),
        );
        let start = slot_of(source);
        if let Some((cached, value)) = self.0[start].get()
            && cached == source
        {
            return value;
        }
        self.probe(source, start, registry, compute)
    }

    /// The rest of [`get`](Self::get): linear probing over a few slots (a
    /// program's hot names are a few dozen, and two of them sharing one
    /// slot would otherwise both go to the registry's lock on every
    /// frame), then the registry; the value takes the first free slot
    /// looked at, else the source's own.
    #[cold]
    fn probe(
        &self,
        source: Source,
        start: usize,
        registry: &Registry<T>,
        compute: impl FnOnce() -> Box<T>,
    ) -> &'static T {
        let mut free = None;
        for probe in 0..PROBES {
            let slot = &self.0[(start + probe) % SLOTS];
            match slot.get() {
                Some((cached, value)) if cached == source => return value,
                Some(_) => {}
                None => {
                    free = Some(slot);
                    break;
                }
            }
        }
        let value = registry.get_or_insert(source, || Box::leak(compute()));
        free.unwrap_or(&self.0[start]).set(Some((source, value)));
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_computed_once_per_source_and_found_again() {
        static REGISTRY: Registry<str> = Registry::new();
        let cache = ThreadCache::new();
        let computed = Cell::new(0);
        let compute = |text: &str| {
            computed.set(computed.get() + 1);
            Box::<str>::from(text.to_uppercase())
        };
        static A: &str = "alpha";
        static B: &str = "beta";
        for _ in 0..3 {
            assert_eq!(cache.get(A, &REGISTRY, || compute(A)), "ALPHA");
            assert_eq!(cache.get(B, &REGISTRY, || compute(B)), "BETA");
        }
        assert_eq!(computed.get(), 2);
        // Another thread's cache finds the registry's values.
        let other = ThreadCache::new();
        assert_eq!(other.get(A, &REGISTRY, || compute(A)), "ALPHA");
        assert_eq!(computed.get(), 2);
    }

    #[test]
    fn more_sources_than_slots_all_answer_right() {
        static REGISTRY: Registry<str> = Registry::new();
        let cache = ThreadCache::new();
        let names: Vec<&'static str> = (0..5 * SLOTS)
            .map(|i| &*Box::leak(format!("field_{i}").into_boxed_str()))
            .collect();
        for _ in 0..2 {
            for name in &names {
                let value = cache.get(*name, &REGISTRY, || Box::from(name.to_uppercase()));
                assert_eq!(value, name.to_uppercase());
            }
        }
    }
}
