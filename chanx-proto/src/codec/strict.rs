//! A `serde` deserializer wrapper that reads a frame the way the schema
//! path does, in the same single pass as plain `serde_json`:
//!
//! - a struct (a model) never reads from a JSON array: serde's derived
//!   `Deserialize` accepts `[tag, payload]` for a struct, pydantic refuses
//!   it, and so does the core;
//! - with `decamelize` on, every object key is converted on the fly, as
//!   [`convert_keys`](crate::case::convert_keys) would before decoding.
//!
//! One thing cannot be decided in one pass: serde buffers a value whose
//! type is not known yet (an adjacently tagged payload that comes before
//! its tag, `untagged`, `flatten`, a `serde_json::Value` field) through
//! `deserialize_any`, and a struct later read from a buffered array is out
//! of this wrapper's sight. An array read through `deserialize_any`
//! therefore raises the reading's `needs_schema_path` flag, and the caller
//! decodes the frame on the schema path instead. So does an enum variant
//! name that decamelizing would change (see [`VariantSeed`]).
//!
//! This is ours rather than a crate's: it is the compatibility promise (what
//! pydantic accepts) kept at serde's speed, measured in
//! `benches/codec.rs` (`list_field`, `camelized`).

use std::cell::Cell;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, VariantAccess, Visitor,
};

use crate::case::{CamelizedFields, camelized_fields, with_decamelized};

/// How a frame is read, shared by every wrapper of one decode.
#[derive(Clone, Copy)]
pub(super) struct Reading<'s> {
    /// Convert object keys `camelCase` → `snake_case`.
    decamelize: bool,
    /// Raised when the one-pass reading cannot vouch for its result.
    needs_schema_path: &'s Cell<bool>,
}

impl<'s> Reading<'s> {
    pub(super) fn new(decamelize: bool, needs_schema_path: &'s Cell<bool>) -> Self {
        Reading {
            decamelize,
            needs_schema_path,
        }
    }

    fn give_up(self) {
        self.needs_schema_path.set(true);
    }
}

/// The wrapped deserializer.
pub(super) struct Strict<'s, D> {
    inner: D,
    reading: Reading<'s>,
    /// The camelized fields of the struct whose object this reads, when
    /// it reads a struct's object with `decamelize` on.
    fields: Option<CamelizedFields>,
}

impl<'s, D> Strict<'s, D> {
    pub(super) fn new(inner: D, reading: Reading<'s>) -> Self {
        Strict {
            inner,
            reading,
            fields: None,
        }
    }
}

/// What a wrapped visitor does with a JSON array.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ArrayIs {
    /// Expected (a sequence, a tuple, an option's content...).
    Fine,
    /// Refused: the visitor builds a struct.
    Refused,
    /// Buffered for a later decision this wrapper cannot see.
    Unchecked,
}

struct Wrap<'s, V> {
    visitor: V,
    reading: Reading<'s>,
    array: ArrayIs,
    /// The fields of the struct the visitor builds, if it builds one.
    fields: &'static [&'static str],
}

impl<'s, V> Wrap<'s, V> {
    fn new(visitor: V, reading: Reading<'s>, array: ArrayIs) -> Self {
        Wrap {
            visitor,
            reading,
            array,
            fields: &[],
        }
    }

    /// A wrapped visitor that builds a struct with these fields.
    fn for_struct(visitor: V, reading: Reading<'s>, fields: &'static [&'static str]) -> Self {
        Wrap {
            fields,
            ..Wrap::new(visitor, reading, ArrayIs::Refused)
        }
    }
}

/// Forwards the scalar `deserialize_*` methods untouched (a scalar holds
/// no struct and no key).
macro_rules! forward_scalars {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            self.inner.$method(visitor)
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Strict<'_, D> {
    type Error = D::Error;

    forward_scalars! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_string deserialize_bytes deserialize_byte_buf deserialize_unit
        deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let wrapped = Wrap::new(visitor, self.reading, ArrayIs::Unchecked);
        self.inner.deserialize_any(wrapped)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let wrapped = Wrap::new(visitor, self.reading, ArrayIs::Fine);
        self.inner.deserialize_option(wrapped)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.inner.deserialize_unit_struct(name, visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let wrapped = Wrap::new(visitor, self.reading, ArrayIs::Fine);
        self.inner.deserialize_newtype_struct(name, wrapped)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let wrapped = Wrap::new(visitor, self.reading, ArrayIs::Fine);
        self.inner.deserialize_seq(wrapped)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let wrapped = Wrap::new(visitor, self.reading, ArrayIs::Fine);
        self.inner.deserialize_tuple(len, wrapped)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let wrapped = Wrap::new(visitor, self.reading, ArrayIs::Fine);
        self.inner.deserialize_tuple_struct(name, len, wrapped)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let wrapped = Wrap::new(visitor, self.reading, ArrayIs::Fine);
        self.inner.deserialize_map(wrapped)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let wrapped = Wrap::for_struct(visitor, self.reading, fields);
        self.inner.deserialize_struct(name, fields, wrapped)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let wrapped = Wrap::new(visitor, self.reading, ArrayIs::Fine);
        self.inner.deserialize_enum(name, variants, wrapped)
    }
}

/// Forwards the scalar `visit_*` methods untouched.
macro_rules! forward_visits {
    ($($method:ident: $ty:ty)*) => {$(
        fn $method<E: de::Error>(self, value: $ty) -> Result<V::Value, E> {
            self.visitor.$method(value)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.visitor.expecting(f)
    }

    forward_visits! {
        visit_bool: bool visit_i64: i64 visit_u64: u64 visit_i128: i128 visit_u128: u128
        visit_f64: f64 visit_str: &str visit_borrowed_str: &'de str visit_string: String
        visit_bytes: &[u8] visit_borrowed_bytes: &'de [u8] visit_byte_buf: Vec<u8>
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.visitor.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.visitor.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<V::Value, D::Error> {
        self.visitor.visit_some(Strict::new(inner, self.reading))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, inner: D) -> Result<V::Value, D::Error> {
        self.visitor
            .visit_newtype_struct(Strict::new(inner, self.reading))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        match self.array {
            ArrayIs::Refused => return Err(de::Error::invalid_type(Unexpected::Seq, &self)),
            ArrayIs::Unchecked => self.reading.give_up(),
            ArrayIs::Fine => {}
        }
        self.visitor.visit_seq(Strict::new(seq, self.reading))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        let fields = (self.reading.decamelize && !self.fields.is_empty())
            .then(|| camelized_fields(self.fields));
        self.visitor.visit_map(Strict {
            inner: map,
            reading: self.reading,
            fields,
        })
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_enum(Strict::new(data, self.reading))
    }
}

/// A seed whose value is read through the wrapper.
struct Seed<'s, S> {
    seed: S,
    reading: Reading<'s>,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, inner: D) -> Result<S::Value, D::Error> {
        self.seed.deserialize(Strict::new(inner, self.reading))
    }
}

/// A seed for an object key: decamelized when asked, then handed to the
/// key's own seed.
struct KeySeed<S> {
    seed: S,
    /// The camelized fields of the struct whose key this is, if any.
    fields: Option<CamelizedFields>,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for KeySeed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, inner: D) -> Result<S::Value, D::Error> {
        inner.deserialize_str(self)
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for KeySeed<S> {
    type Value = S::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<S::Value, E> {
        // Every key of every frame of a camelizing endpoint comes here.
        // A struct's field camelized decamelizes to that field: found by
        // comparing, not converting (see `camelized_fields`).
        let field = self
            .fields
            .and_then(|fields| fields.iter().find(|(_, camelized)| **camelized == *key));
        if let Some((field, _)) = field {
            return self.seed.deserialize(field.into_deserializer());
        }
        with_decamelized(key, |key| self.seed.deserialize(key.into_deserializer()))
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Strict<'_, A> {
    type Error = A::Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        let reading = self.reading;
        self.inner.next_element_seed(Seed { seed, reading })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Strict<'_, A> {
    type Error = A::Error;

    fn next_key_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        if self.reading.decamelize {
            self.inner.next_key_seed(KeySeed {
                seed,
                fields: self.fields,
            })
        } else {
            self.inner.next_key_seed(seed)
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        let reading = self.reading;
        self.inner.next_value_seed(Seed { seed, reading })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'s, 'de, A: EnumAccess<'de>> EnumAccess<'de> for Strict<'s, A> {
    type Error = A::Error;
    type Variant = Strict<'s, A::Variant>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), A::Error> {
        let reading = self.reading;
        let (value, variant) = if reading.decamelize {
            self.inner.variant_seed(VariantSeed { seed, reading })?
        } else {
            self.inner.variant_seed(seed)?
        };
        Ok((value, Strict::new(variant, reading)))
    }
}

/// A seed for an enum's variant name on a decamelizing endpoint. The name
/// is an object key in `{"Variant": ...}` (decamelized by the schema path)
/// but a value in `"Variant"` and in an adjacently tagged tag (left
/// alone), and serde does not say which: a name that decamelizing would
/// change leaves the frame to the schema path.
struct VariantSeed<'s, S> {
    seed: S,
    reading: Reading<'s>,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for VariantSeed<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, inner: D) -> Result<S::Value, D::Error> {
        inner.deserialize_str(self)
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for VariantSeed<'_, S> {
    type Value = S::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a variant name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<S::Value, E> {
        if with_decamelized(name, |decamelized| decamelized != name) {
            self.reading.give_up();
        }
        self.seed.deserialize(name.into_deserializer())
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Strict<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, A::Error> {
        let reading = self.reading;
        self.inner.newtype_variant_seed(Seed { seed, reading })
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let wrapped = Wrap::new(visitor, self.reading, ArrayIs::Fine);
        self.inner.tuple_variant(len, wrapped)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let wrapped = Wrap::for_struct(visitor, self.reading, fields);
        self.inner.struct_variant(fields, wrapped)
    }
}
