//! Parquet for `clip embed-shards`: reading samples from a parquet shard with an image-bytes
//! column, and writing the metadata tables in clip-retrieval's layout (string columns, one
//! row group, snappy), through the `parquet` crate's low-level API (no arrow).
//!
//! Not here: which outputs are written when (`shards.rs`); tar and folder shards
//! (`shard_read.rs`).

use crate::shard_read::{Columns, Sample};
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::record::Field;
use parquet::schema::types::Type;
use std::path::Path;
use std::sync::Arc;

/// Image columns looked for when `--image-column` is not given, in this order (img2dataset
/// writes `jpg`; Hugging Face datasets `image`, a struct with `bytes`).
const IMAGE_COLUMNS: [&str; 7] = ["jpg", "png", "jpeg", "webp", "image", "image_bytes", "img"];

/// A string table column: its name and one value per row (`None` is null).
pub struct Column<'a> {
    pub name: &'a str,
    pub values: Vec<Option<&'a str>>,
    pub nullable: bool,
}

/// A parquet file of UTF-8 string columns, all of the same length, as bytes.
pub fn write_strings(columns: &[Column<'_>]) -> Result<Vec<u8>, String> {
    let fields: String = columns
        .iter()
        .map(|c| {
            let rep = if c.nullable { "OPTIONAL" } else { "REQUIRED" };
            format!("{rep} BYTE_ARRAY {} (UTF8); ", c.name)
        })
        .collect();
    let schema =
        parquet::schema::parser::parse_message_type(&format!("message schema {{ {fields}}}"))
            .map_err(|e| format!("metadata schema: {e}"))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by("clip-rs embed-shards".into())
        .build();
    let err = |e: parquet::errors::ParquetError| format!("cannot write parquet: {e}");
    let mut w =
        SerializedFileWriter::new(Vec::new(), Arc::new(schema), Arc::new(props)).map_err(err)?;
    let mut rg = w.next_row_group().map_err(err)?;
    let mut i = 0;
    while let Some(mut col) = rg.next_column().map_err(err)? {
        let c = &columns[i];
        let values: Vec<ByteArray> = c
            .values
            .iter()
            .flatten()
            .map(|s| ByteArray::from(s.as_bytes().to_vec()))
            .collect();
        let defs: Vec<i16> = c.values.iter().map(|v| i16::from(v.is_some())).collect();
        col.typed::<ByteArrayType>()
            .write_batch(&values, c.nullable.then_some(defs.as_slice()), None)
            .map_err(err)?;
        col.close().map_err(err)?;
        i += 1;
    }
    rg.close().map_err(err)?;
    w.into_inner().map_err(err)
}

/// A field as text, for key, caption and url columns (numbers are written out).
fn text(f: &Field) -> Option<String> {
    match f {
        Field::Str(s) => Some(s.clone()),
        Field::Bytes(b) => Some(String::from_utf8_lossy(b.data()).into_owned()),
        Field::Null => None,
        Field::Int(v) => Some(v.to_string()),
        Field::Long(v) => Some(v.to_string()),
        Field::UInt(v) => Some(v.to_string()),
        Field::ULong(v) => Some(v.to_string()),
        _ => None,
    }
}

/// The encoded image of an image field: bytes, or a struct holding `bytes`.
fn image_bytes(f: &Field) -> Result<Vec<u8>, String> {
    match f {
        Field::Bytes(b) => Ok(b.data().to_vec()),
        Field::Null => Err("no image (null)".into()),
        Field::Group(row) => row
            .get_column_iter()
            .find(|(n, _)| n.as_str() == "bytes")
            .map_or(
                Err("no `bytes` field in the image struct".into()),
                |(_, v)| image_bytes(v),
            ),
        other => Err(format!("the image column holds {other:?}, not bytes")),
    }
}

/// Calls `f` with each row of a parquet shard as a sample, in order.
pub fn read_samples(
    path: &Path,
    columns: &Columns,
    f: &mut dyn FnMut(Sample) -> Result<(), String>,
) -> Result<(), String> {
    let shard = path.display().to_string();
    let bad = |e: parquet::errors::ParquetError| format!("{shard}: unreadable parquet: {e}");
    let file = std::fs::File::open(path).map_err(|e| format!("{shard}: cannot read: {e}"))?;
    let reader = SerializedFileReader::new(file).map_err(bad)?;
    let root = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .root_schema()
        .clone();
    let fields = root.get_fields();
    let find = |name: &str| fields.iter().find(|t| t.name() == name).cloned();
    let image = match &columns.image {
        Some(c) => find(c).ok_or_else(|| format!("{shard}: no column {c:?}"))?,
        None => IMAGE_COLUMNS.iter().find_map(|c| find(c)).ok_or_else(|| {
            format!(
                "{shard}: no image column (looked for {}); name it with --image-column",
                IMAGE_COLUMNS.join(", ")
            )
        })?,
    };
    let named = |given: &Option<String>, default: &str| -> Result<Option<Arc<Type>>, String> {
        match given {
            Some(c) => find(c)
                .map(Some)
                .ok_or_else(|| format!("{shard}: no column {c:?}")),
            None => Ok(find(default)),
        }
    };
    let caption = named(&columns.caption, "caption")?;
    let key = named(&columns.key, "key")?;
    let url = find("url");
    let mut chosen = vec![image.clone()];
    for t in [&caption, &key, &url].into_iter().flatten() {
        if !chosen.iter().any(|c| c.name() == t.name()) {
            chosen.push(t.clone());
        }
    }
    let projection = Type::group_type_builder(root.name())
        .with_fields(chosen)
        .build()
        .map_err(bad)?;
    let rows = reader.get_row_iter(Some(projection)).map_err(bad)?;
    for (i, row) in rows.enumerate() {
        let row = row.map_err(bad)?;
        let get = |t: &Option<Arc<Type>>| -> Option<String> {
            let t = t.as_ref()?;
            let (_, v) = row
                .get_column_iter()
                .find(|(n, _)| n.as_str() == t.name())?;
            text(v)
        };
        let (_, img) = row
            .get_column_iter()
            .find(|(n, _)| n.as_str() == image.name())
            .ok_or_else(|| format!("{shard}: row {i} has no image column"))?;
        let (image, problem) = match image_bytes(img) {
            Ok(b) => (Some(b), None),
            Err(e) => (None, Some(e)),
        };
        f(Sample {
            key: get(&key).unwrap_or_else(|| format!("{i:09}")),
            image,
            caption: get(&caption),
            url: get(&url),
            image_path: format!("{shard}#{i}"),
            problem,
        })?;
    }
    Ok(())
}
