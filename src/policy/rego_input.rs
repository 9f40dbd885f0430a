//! The Rego `input` of a hook: any serde-serialisable value (the typed [`HookDocument`]) turned
//! straight into a [`regorus::Value`], field for field what `serde_json::to_value` would give,
//! without first building a `serde_json` tree and walking it again. Field names are shared
//! between objects (one allocation per name, not one per file of a 20k-file image). It owns this
//! conversion only; what the document holds is `crate::document`'s business.
//!
//! [`HookDocument`]: crate::document::HookDocument

use regorus::Value;
use serde::ser::{self, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

/// A value serde cannot express as JSON (a map with a non-string key, a serializer error).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unrepresentable(String);

impl ser::Error for Unrepresentable {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Unrepresentable(msg.to_string())
    }
}

/// The Rego form of `value`, equal to `regorus::Value::from(serde_json::to_value(value)?)`.
pub fn to_rego<T: Serialize + ?Sized>(value: &T) -> Result<Value, Unrepresentable> {
    let mut names = Names::default();
    value.serialize(Serializer { names: &mut names })
}

/// Field names already made into Rego strings, found by the address of the `&'static str` serde
/// hands over (the same literal every time for a field of a derived type): no hashing of the
/// text, which over a 20k-file image is six names per file. Two literals of the same text are two
/// entries, each a correct Rego string.
#[derive(Default)]
struct Names(HashMap<(usize, usize), Value, BuildHasherDefault<AddressHasher>>);

impl Names {
    fn get(&mut self, name: &'static str) -> Value {
        self.0
            .entry((name.as_ptr() as usize, name.len()))
            .or_insert_with(|| Value::from(name))
            .clone()
    }
}

/// Mixes the two words of a name's address and length; nothing an image controls is hashed here.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

struct Serializer<'a> {
    names: &'a mut Names,
}

/// An integer as `input_value` reads a JSON number: signed when it fits.
fn unsigned(u: u64) -> Value {
    match i64::try_from(u) {
        Ok(i) => Value::from(i),
        Err(_) => Value::from(u),
    }
}

/// JSON has no NaN or infinity: serde_json writes them as `null`.
fn float(f: f64) -> Value {
    if f.is_finite() {
        Value::from(f)
    } else {
        Value::Null
    }
}

impl<'a> ser::Serializer for Serializer<'a> {
    type Ok = Value;
    type Error = Unrepresentable;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Seq<'a>;
    type SerializeTupleStruct = Seq<'a>;
    type SerializeTupleVariant = Variant<Seq<'a>>;
    type SerializeMap = Map<'a>;
    type SerializeStruct = Map<'a>;
    type SerializeStructVariant = Variant<Map<'a>>;

    fn serialize_bool(self, v: bool) -> Result<Value, Unrepresentable> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, Unrepresentable> {
        Ok(Value::from(i64::from(v)))
    }
    fn serialize_i16(self, v: i16) -> Result<Value, Unrepresentable> {
        Ok(Value::from(i64::from(v)))
    }
    fn serialize_i32(self, v: i32) -> Result<Value, Unrepresentable> {
        Ok(Value::from(i64::from(v)))
    }
    fn serialize_i64(self, v: i64) -> Result<Value, Unrepresentable> {
        Ok(Value::from(v))
    }
    fn serialize_u8(self, v: u8) -> Result<Value, Unrepresentable> {
        Ok(unsigned(u64::from(v)))
    }
    fn serialize_u16(self, v: u16) -> Result<Value, Unrepresentable> {
        Ok(unsigned(u64::from(v)))
    }
    fn serialize_u32(self, v: u32) -> Result<Value, Unrepresentable> {
        Ok(unsigned(u64::from(v)))
    }
    fn serialize_u64(self, v: u64) -> Result<Value, Unrepresentable> {
        Ok(unsigned(v))
    }
    fn serialize_f32(self, v: f32) -> Result<Value, Unrepresentable> {
        Ok(float(f64::from(v)))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, Unrepresentable> {
        Ok(float(v))
    }
    fn serialize_char(self, v: char) -> Result<Value, Unrepresentable> {
        Ok(Value::from(v.to_string().as_str()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, Unrepresentable> {
        Ok(Value::from(v))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, Unrepresentable> {
        Ok(Value::from(
            v.iter()
                .map(|b| unsigned(u64::from(*b)))
                .collect::<Vec<_>>(),
        ))
    }
    fn serialize_none(self) -> Result<Value, Unrepresentable> {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, Unrepresentable> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, Unrepresentable> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Value, Unrepresentable> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Value, Unrepresentable> {
        Ok(self.names.get(variant))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Value, Unrepresentable> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, Unrepresentable> {
        let key = self.names.get(variant);
        let inner = value.serialize(Serializer { names: self.names })?;
        Ok(Value::from(BTreeMap::from([(key, inner)])))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Seq<'a>, Unrepresentable> {
        Ok(Seq {
            names: self.names,
            items: Vec::with_capacity(len.unwrap_or(0)),
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq<'a>, Unrepresentable> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        len: usize,
    ) -> Result<Seq<'a>, Unrepresentable> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Variant<Seq<'a>>, Unrepresentable> {
        let key = self.names.get(variant);
        Ok(Variant {
            key,
            inner: self.serialize_seq(Some(len))?,
        })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Map<'a>, Unrepresentable> {
        Ok(Map {
            names: self.names,
            fields: Vec::with_capacity(len.unwrap_or(0)),
            key: None,
        })
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Map<'a>, Unrepresentable> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Variant<Map<'a>>, Unrepresentable> {
        let key = self.names.get(variant);
        Ok(Variant {
            key,
            inner: self.serialize_map(None)?,
        })
    }
}

struct Seq<'a> {
    names: &'a mut Names,
    items: Vec<Value>,
}

impl Seq<'_> {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unrepresentable> {
        let v = value.serialize(Serializer { names: self.names })?;
        self.items.push(v);
        Ok(())
    }
}

impl ser::SerializeSeq for Seq<'_> {
    type Ok = Value;
    type Error = Unrepresentable;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unrepresentable> {
        self.push(v)
    }
    fn end(self) -> Result<Value, Unrepresentable> {
        Ok(Value::from(self.items))
    }
}

impl ser::SerializeTuple for Seq<'_> {
    type Ok = Value;
    type Error = Unrepresentable;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unrepresentable> {
        self.push(v)
    }
    fn end(self) -> Result<Value, Unrepresentable> {
        Ok(Value::from(self.items))
    }
}

impl ser::SerializeTupleStruct for Seq<'_> {
    type Ok = Value;
    type Error = Unrepresentable;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unrepresentable> {
        self.push(v)
    }
    fn end(self) -> Result<Value, Unrepresentable> {
        Ok(Value::from(self.items))
    }
}

struct Map<'a> {
    names: &'a mut Names,
    /// In serialisation order; sorted (the last of equal keys kept, as a map insert would) once,
    /// at the end, instead of a tree insert per field.
    fields: Vec<(Value, Value)>,
    /// The key of `serialize_key`, waiting for its value.
    key: Option<Value>,
}

impl Map<'_> {
    fn insert<T: Serialize + ?Sized>(
        &mut self,
        key: Value,
        value: &T,
    ) -> Result<(), Unrepresentable> {
        let v = value.serialize(Serializer { names: self.names })?;
        self.fields.push((key, v));
        Ok(())
    }
}

impl Map<'_> {
    fn into_value(self) -> Value {
        Value::from(self.fields.into_iter().collect::<BTreeMap<_, _>>())
    }
}

impl ser::SerializeMap for Map<'_> {
    type Ok = Value;
    type Error = Unrepresentable;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Unrepresentable> {
        self.key = Some(key.serialize(KeySerializer)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unrepresentable> {
        let key = self
            .key
            .take()
            .ok_or_else(|| Unrepresentable("a map value without its key".into()))?;
        self.insert(key, v)
    }
    fn end(self) -> Result<Value, Unrepresentable> {
        Ok(self.into_value())
    }
}

impl ser::SerializeStruct for Map<'_> {
    type Ok = Value;
    type Error = Unrepresentable;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        v: &T,
    ) -> Result<(), Unrepresentable> {
        let key = self.names.get(name);
        self.insert(key, v)
    }
    fn end(self) -> Result<Value, Unrepresentable> {
        Ok(self.into_value())
    }
}

/// A tuple or struct variant: `{variant: inner}`, as serde_json writes it.
struct Variant<I> {
    key: Value,
    inner: I,
}

impl ser::SerializeTupleVariant for Variant<Seq<'_>> {
    type Ok = Value;
    type Error = Unrepresentable;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unrepresentable> {
        self.inner.push(v)
    }
    fn end(self) -> Result<Value, Unrepresentable> {
        let inner = Value::from(self.inner.items);
        Ok(Value::from(BTreeMap::from([(self.key, inner)])))
    }
}

impl ser::SerializeStructVariant for Variant<Map<'_>> {
    type Ok = Value;
    type Error = Unrepresentable;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        v: &T,
    ) -> Result<(), Unrepresentable> {
        let key = self.inner.names.get(name);
        self.inner.insert(key, v)
    }
    fn end(self) -> Result<Value, Unrepresentable> {
        let inner = self.inner.into_value();
        Ok(Value::from(BTreeMap::from([(self.key, inner)])))
    }
}

/// Map keys: strings, and integers or booleans written as strings (as serde_json does).
struct KeySerializer;

impl KeySerializer {
    fn text(s: impl ToString) -> Result<Value, Unrepresentable> {
        Ok(Value::from(s.to_string().as_str()))
    }
    fn refuse<T>(what: &str) -> Result<T, Unrepresentable> {
        Err(Unrepresentable(format!(
            "a map key must be a string, not {what}"
        )))
    }
}

impl ser::Serializer for KeySerializer {
    type Ok = Value;
    type Error = Unrepresentable;
    type SerializeSeq = ser::Impossible<Value, Unrepresentable>;
    type SerializeTuple = ser::Impossible<Value, Unrepresentable>;
    type SerializeTupleStruct = ser::Impossible<Value, Unrepresentable>;
    type SerializeTupleVariant = ser::Impossible<Value, Unrepresentable>;
    type SerializeMap = ser::Impossible<Value, Unrepresentable>;
    type SerializeStruct = ser::Impossible<Value, Unrepresentable>;
    type SerializeStructVariant = ser::Impossible<Value, Unrepresentable>;

    fn serialize_bool(self, v: bool) -> Result<Value, Unrepresentable> {
        Self::text(v)
    }
    fn serialize_i8(self, v: i8) -> Result<Value, Unrepresentable> {
        Self::text(v)
    }
    fn serialize_i16(self, v: i16) -> Result<Value, Unrepresentable> {
        Self::text(v)
    }
    fn serialize_i32(self, v: i32) -> Result<Value, Unrepresentable> {
        Self::text(v)
    }
    fn serialize_i64(self, v: i64) -> Result<Value, Unrepresentable> {
        Self::text(v)
    }
    fn serialize_u8(self, v: u8) -> Result<Value, Unrepresentable> {
        Self::text(v)
    }
    fn serialize_u16(self, v: u16) -> Result<Value, Unrepresentable> {
        Self::text(v)
    }
    fn serialize_u32(self, v: u32) -> Result<Value, Unrepresentable> {
        Self::text(v)
    }
    fn serialize_u64(self, v: u64) -> Result<Value, Unrepresentable> {
        Self::text(v)
    }
    fn serialize_f32(self, _: f32) -> Result<Value, Unrepresentable> {
        Self::refuse("a float")
    }
    fn serialize_f64(self, _: f64) -> Result<Value, Unrepresentable> {
        Self::refuse("a float")
    }
    fn serialize_char(self, v: char) -> Result<Value, Unrepresentable> {
        Self::text(v)
    }
    fn serialize_str(self, v: &str) -> Result<Value, Unrepresentable> {
        Ok(Value::from(v))
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<Value, Unrepresentable> {
        Self::refuse("bytes")
    }
    fn serialize_none(self) -> Result<Value, Unrepresentable> {
        Self::refuse("null")
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, Unrepresentable> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, Unrepresentable> {
        Self::refuse("null")
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Value, Unrepresentable> {
        Self::refuse("null")
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Value, Unrepresentable> {
        Ok(Value::from(variant))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Value, Unrepresentable> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Value, Unrepresentable> {
        Self::refuse("an enum")
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Unrepresentable> {
        Self::refuse("a list")
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Unrepresentable> {
        Self::refuse("a list")
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Unrepresentable> {
        Self::refuse("a list")
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Unrepresentable> {
        Self::refuse("an enum")
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Unrepresentable> {
        Self::refuse("an object")
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, Unrepresentable> {
        Self::refuse("an object")
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Unrepresentable> {
        Self::refuse("an enum")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::HookDocument;
    use crate::policy::hook::HookPoint;
    use crate::policy::rego::input_value;
    use serde_json::json;

    #[test]
    fn the_direct_conversion_equals_the_json_one() {
        let doc = json!({
            "hook": "contents", "n": null, "t": true, "f": false,
            "ints": [0, -7, 493, i64::MAX, u64::MAX], "floats": [1.5, -0.25, 1e300],
            "s": "caf\u{e9} \"q\"", "nested": {"b": [{"x": {}}, []], "a": ""},
        });
        assert_eq!(to_rego(&doc).unwrap(), input_value(&doc));
        assert_eq!(to_rego(&doc).unwrap(), Value::from(doc));
    }

    #[test]
    fn every_hook_document_converts_as_its_json() {
        // The contract document of every hook: typed enums, flattened sections, skipped
        // absent fields and free-form JSON (labels, predicates) all as serde_json writes them.
        let golden: serde_json::Value = serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/contract.json"
        )))
        .unwrap();
        for hook in HookPoint::ALL {
            let doc = HookDocument::from_json(hook, &golden[hook.as_str()]).unwrap();
            assert_eq!(doc.to_json(), golden[hook.as_str()], "{hook}");
            assert_eq!(
                to_rego(&doc).unwrap(),
                input_value(&doc.to_json()),
                "{hook}"
            );
        }
    }

    #[test]
    fn a_repeated_map_key_keeps_its_last_value_as_serde_json_does() {
        struct Repeated;
        impl Serialize for Repeated {
            fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_map([("b", 1), ("a", 2), ("b", 3), ("a", 4), ("c", 5)])
            }
        }
        let json = serde_json::to_value(Repeated).unwrap();
        assert_eq!(json, json!({"a": 4, "b": 3, "c": 5}));
        assert_eq!(to_rego(&Repeated).unwrap(), Value::from(json));
    }

    #[test]
    fn enums_and_keys_follow_serde_json() {
        #[derive(serde::Serialize)]
        enum E {
            Unit,
            New(u8),
            Tuple(u8, bool),
            Struct { a: f64 },
        }
        let values = (
            vec![
                E::Unit,
                E::New(1),
                E::Tuple(2, true),
                E::Struct { a: f64::NAN },
            ],
            BTreeMap::from([(3u32, 'c')]),
            (),
        );
        assert_eq!(
            to_rego(&values).unwrap(),
            Value::from(serde_json::to_value(&values).unwrap())
        );
        let bad = BTreeMap::from([(vec![1], 2)]);
        assert!(to_rego(&bad).is_err());
    }
}
