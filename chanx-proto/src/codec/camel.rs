//! Camelized JSON in one pass: a `serde` serializer wrapper that writes
//! every object key camelized as it goes, instead of building a
//! [`Value`](serde_json::Value), converting its keys and serializing that.
//! With `serde-transcode` it also camelizes an already serialized text (a
//! group message or topic broadcast shared by many receivers).
//!
//! Ours rather than a crate's: the keys must come out exactly as pyhumps'
//! `camelize` makes them (the compatibility promise), and the one pass is
//! a measured win (`benches/codec.rs`, `camelized`).
//!
//! Two shapes are left to the `Value` path: a tuple or struct variant
//! (`{"Variant": [...]}` / `{"Variant": {...}}`), whose name is an object
//! key the inner serializer only takes as `&'static str`. They raise the
//! `gave_up` flag, and the caller serializes the slow way.

use std::cell::Cell;

use serde::ser::{
    self, Impossible, Serialize, SerializeMap, SerializeSeq, SerializeStruct, SerializeTuple,
    SerializeTupleStruct, Serializer,
};

use crate::case::{with_camelized, with_camelized_field};

/// Serializes `value` as compact JSON with camelized keys. `None` when the
/// value has a shape this pass leaves to the `Value` path.
pub(crate) fn to_camel_string<T: Serialize + ?Sized>(
    value: &T,
) -> Option<serde_json::Result<String>> {
    let gave_up = Cell::new(false);
    // Through `serde_json::to_string`, which knows its output is UTF-8
    // without checking it again.
    let written = serde_json::to_string(&Value {
        value,
        gave_up: &gave_up,
    });
    if gave_up.get() {
        return None;
    }
    Some(written)
}

/// Camelizes the keys of the JSON text `text`, compacting it.
pub(crate) fn camelize_text(text: &str) -> serde_json::Result<String> {
    let gave_up = Cell::new(false);
    let mut out = Vec::with_capacity(text.len() + 8);
    let mut json = serde_json::Deserializer::from_str(text);
    serde_transcode::transcode(
        &mut json,
        Camel {
            inner: &mut serde_json::Serializer::new(&mut out),
            gave_up: &gave_up,
        },
    )?;
    json.end()?;
    into_string(out)
}

fn into_string(bytes: Vec<u8>) -> serde_json::Result<String> {
    String::from_utf8(bytes).map_err(ser::Error::custom)
}

/// The wrapped serializer.
struct Camel<'g, S> {
    inner: S,
    gave_up: &'g Cell<bool>,
}

/// A value serialized through the wrapper.
struct Value<'a, 'g, T: ?Sized> {
    value: &'a T,
    gave_up: &'g Cell<bool>,
}

impl<T: Serialize + ?Sized> Serialize for Value<'_, '_, T> {
    fn serialize<S: Serializer>(&self, inner: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(Camel {
            inner,
            gave_up: self.gave_up,
        })
    }
}

/// A key known as text, written camelized.
struct KeyText<'a>(&'a str);

impl Serialize for KeyText<'_> {
    fn serialize<S: Serializer>(&self, inner: S) -> Result<S::Ok, S::Error> {
        with_camelized(self.0, |key| inner.serialize_str(key))
    }
}

/// A struct's field name, written camelized (remembered per thread).
struct FieldName(&'static str);

impl Serialize for FieldName {
    fn serialize<S: Serializer>(&self, inner: S) -> Result<S::Ok, S::Error> {
        with_camelized_field(self.0, |key| inner.serialize_str(key))
    }
}

/// A map key of any type: its text, if it is text, is camelized.
struct Key<'a, T: ?Sized>(&'a T);

impl<T: Serialize + ?Sized> Serialize for Key<'_, T> {
    fn serialize<S: Serializer>(&self, inner: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(KeySerializer(inner))
    }
}

/// Forwards `serialize_*` methods that take one plain argument.
macro_rules! forward {
    ($($method:ident: $ty:ty)*) => {$(
        fn $method(self, v: $ty) -> Result<S::Ok, S::Error> {
            self.inner.$method(v)
        }
    )*};
}

impl<'g, S: Serializer> Serializer for Camel<'g, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Each<'g, S::SerializeSeq>;
    type SerializeTuple = Each<'g, S::SerializeTuple>;
    type SerializeTupleStruct = Each<'g, S::SerializeTupleStruct>;
    type SerializeTupleVariant = Impossible<S::Ok, S::Error>;
    type SerializeMap = Each<'g, S::SerializeMap>;
    type SerializeStruct = Each<'g, S::SerializeMap>;
    type SerializeStructVariant = Impossible<S::Ok, S::Error>;

    forward! {
        serialize_bool: bool serialize_i8: i8 serialize_i16: i16 serialize_i32: i32
        serialize_i64: i64 serialize_i128: i128 serialize_u8: u8 serialize_u16: u16
        serialize_u32: u32 serialize_u64: u64 serialize_u128: u128 serialize_f32: f32
        serialize_f64: f64 serialize_char: char serialize_str: &str serialize_bytes: &[u8]
        serialize_unit_struct: &'static str
    }

    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.inner.serialize_none()
    }

    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        let gave_up = self.gave_up;
        self.inner.serialize_some(&Value { value, gave_up })
    }

    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        // A string value, not a key: left as it is.
        self.inner.serialize_unit_variant(name, index, variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        let gave_up = self.gave_up;
        self.inner
            .serialize_newtype_struct(name, &Value { value, gave_up })
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        // `{"variant": value}`, the variant being a key.
        let gave_up = self.gave_up;
        let mut map = self.inner.serialize_map(Some(1))?;
        map.serialize_entry(&KeyText(variant), &Value { value, gave_up })?;
        map.end()
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        Ok(Each::new(self.inner.serialize_seq(len)?, self.gave_up))
    }

    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        Ok(Each::new(self.inner.serialize_tuple(len)?, self.gave_up))
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        let inner = self.inner.serialize_tuple_struct(name, len)?;
        Ok(Each::new(inner, self.gave_up))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.gave_up.set(true);
        Err(ser::Error::custom("a tuple variant takes the Value path"))
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        Ok(Each::new(self.inner.serialize_map(len)?, self.gave_up))
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        // JSON writes a struct as an object: as a map, its keys need not
        // be `'static`.
        Ok(Each::new(
            self.inner.serialize_map(Some(len))?,
            self.gave_up,
        ))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.gave_up.set(true);
        Err(ser::Error::custom("a struct variant takes the Value path"))
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// A compound being serialized: each element, value and key goes through
/// the wrapper.
struct Each<'g, C> {
    inner: C,
    gave_up: &'g Cell<bool>,
}

impl<'g, C> Each<'g, C> {
    fn new(inner: C, gave_up: &'g Cell<bool>) -> Self {
        Each { inner, gave_up }
    }
}

/// Implements a sequence-like compound trait for [`Each`].
macro_rules! each_element {
    ($($trait:ident::$method:ident),*) => {$(
        impl<C: $trait> $trait for Each<'_, C> {
            type Ok = C::Ok;
            type Error = C::Error;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
                let gave_up = self.gave_up;
                self.inner.$method(&Value { value, gave_up })
            }

            fn end(self) -> Result<C::Ok, C::Error> {
                self.inner.end()
            }
        }
    )*};
}

each_element!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field
);

impl<C: SerializeMap> SerializeMap for Each<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), C::Error> {
        self.inner.serialize_key(&Key(key))
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        let gave_up = self.gave_up;
        self.inner.serialize_value(&Value { value, gave_up })
    }

    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: SerializeMap> SerializeStruct for Each<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), C::Error> {
        let gave_up = self.gave_up;
        self.inner
            .serialize_entry(&FieldName(key), &Value { value, gave_up })
    }

    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

/// Serializes a map key: text is camelized, anything else passes through
/// (JSON keys are text; the inner serializer refuses the rest).
struct KeySerializer<S>(S);

/// Forwards `serialize_*` methods of [`KeySerializer`].
macro_rules! forward_key {
    ($($method:ident: $ty:ty)*) => {$(
        fn $method(self, v: $ty) -> Result<S::Ok, S::Error> {
            self.0.$method(v)
        }
    )*};
}

impl<S: Serializer> Serializer for KeySerializer<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = S::SerializeSeq;
    type SerializeTuple = S::SerializeTuple;
    type SerializeTupleStruct = S::SerializeTupleStruct;
    type SerializeTupleVariant = S::SerializeTupleVariant;
    type SerializeMap = S::SerializeMap;
    type SerializeStruct = S::SerializeStruct;
    type SerializeStructVariant = S::SerializeStructVariant;

    forward_key! {
        serialize_bool: bool serialize_i8: i8 serialize_i16: i16 serialize_i32: i32
        serialize_i64: i64 serialize_i128: i128 serialize_u8: u8 serialize_u16: u16
        serialize_u32: u32 serialize_u64: u64 serialize_u128: u128 serialize_f32: f32
        serialize_f64: f64 serialize_char: char serialize_bytes: &[u8]
        serialize_unit_struct: &'static str
    }

    fn serialize_str(self, v: &str) -> Result<S::Ok, S::Error> {
        with_camelized(v, |key| self.0.serialize_str(key))
    }

    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_none()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_some(&Key(value))
    }

    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit_variant(name, index, variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_struct(name, &Key(value))
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0
            .serialize_newtype_variant(name, index, variant, value)
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<S::SerializeSeq, S::Error> {
        self.0.serialize_seq(len)
    }

    fn serialize_tuple(self, len: usize) -> Result<S::SerializeTuple, S::Error> {
        self.0.serialize_tuple(len)
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<S::SerializeTupleStruct, S::Error> {
        self.0.serialize_tuple_struct(name, len)
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<S::SerializeTupleVariant, S::Error> {
        self.0.serialize_tuple_variant(name, index, variant, len)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<S::SerializeMap, S::Error> {
        self.0.serialize_map(len)
    }

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<S::SerializeStruct, S::Error> {
        self.0.serialize_struct(name, len)
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<S::SerializeStructVariant, S::Error> {
        self.0.serialize_struct_variant(name, index, variant, len)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde::Serialize;
    use serde_json::json;

    use super::*;
    use crate::case::{camelize, convert_keys};

    /// What the one pass must produce: the `Value` path.
    fn by_value<T: Serialize>(value: &T) -> String {
        let value = serde_json::to_value(value).expect("value");
        serde_json::to_string(&convert_keys(value, camelize)).expect("json")
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z_-]{0,8}",
            "[a-zA-Z0-9_ é-]{0,6}",
            Just("__a_b__".to_owned())
        ]
    }

    fn json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            key().prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::vec((key(), inner), 0..4)
                    .prop_map(|entries| serde_json::Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn one_pass_matches_the_value_path(value in json()) {
            let expected = by_value(&value);
            prop_assert_eq!(to_camel_string(&value).expect("one pass").expect("json"), expected.clone());
            // From text, both ways read the numbers with the same parser.
            let text = value.to_string();
            let reread: serde_json::Value = serde_json::from_str(&text).expect("json");
            prop_assert_eq!(camelize_text(&text).expect("json"), by_value(&reread));
        }
    }

    #[derive(Serialize)]
    #[serde(rename_all = "snake_case")]
    enum Shape {
        UnitShape,
        NewtypeShape(Inner),
    }

    #[derive(Serialize)]
    struct Inner {
        line_items: Vec<u8>,
        by_id: BTreeMap<u32, String>,
        maybe_value: Option<Box<Inner>>,
    }

    #[derive(Serialize)]
    struct Frame {
        status_code: u16,
        shapes: Vec<Shape>,
        pair_of: (u8, &'static str),
    }

    #[test]
    fn typed_values_match_the_value_path() {
        let frame = Frame {
            status_code: 200,
            shapes: vec![
                Shape::UnitShape,
                Shape::NewtypeShape(Inner {
                    line_items: vec![1, 2],
                    by_id: BTreeMap::from([(7, "seven_x".into())]),
                    maybe_value: Some(Box::new(Inner {
                        line_items: vec![],
                        by_id: BTreeMap::new(),
                        maybe_value: None,
                    })),
                }),
            ],
            pair_of: (1, "a_b"),
        };
        let one_pass = to_camel_string(&frame).expect("one pass").expect("json");
        assert_eq!(one_pass, by_value(&frame));
        assert!(one_pass.contains(r#""statusCode":200"#), "{one_pass}");
        assert!(
            one_pass.contains(r#""newtypeShape":{"lineItems""#),
            "{one_pass}"
        );
        assert!(one_pass.contains(r#""unit_shape""#), "{one_pass}");
    }

    #[test]
    fn tuple_and_struct_variants_take_the_value_path() {
        #[derive(Serialize)]
        enum Variants {
            Tuple(u8, u8),
            Struct { field_one: u8 },
        }
        assert!(to_camel_string(&Variants::Tuple(1, 2)).is_none());
        assert!(to_camel_string(&Variants::Struct { field_one: 1 }).is_none());
        assert_eq!(
            crate::codec::encode(&Variants::Struct { field_one: 1 }, true).expect("json"),
            json!({"Struct": {"fieldOne": 1}}).to_string()
        );
    }

    #[test]
    fn text_that_is_not_json_is_an_error() {
        assert!(camelize_text("{\"a_b\":").is_err());
        assert!(camelize_text("{} x").is_err());
    }
}
