use super::*;
use std::io::Cursor;

fn reader(content: &str, format: InputFormat) -> RecordReader {
    RecordReader::from_reader(
        Box::new(Cursor::new(content.as_bytes().to_vec())),
        format,
        "users.json",
    )
}

fn emails(records: &[RawRecord]) -> Vec<Option<String>> {
    records
        .iter()
        .map(|r| {
            r.value
                .as_ref()
                .ok()
                .and_then(|m| m.get("email"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect()
}

#[test]
fn ndjson_bad_line_in_the_middle_loses_nothing() {
    let input = "{\"email\":\"a@x.com\"}\n\n{\"email\":\"b@x.com\"}\r\n{\"email\": oops}\n\"just a string\"\n  \n{\"email\":\"c@x.com\"}";
    let mut r = reader(input, InputFormat::Neutral);
    let records: Vec<_> = r.by_ref().collect();
    assert!(r.take_error().is_none());
    assert_eq!(records.len(), 5);
    assert_eq!(
        records
            .iter()
            .map(|r| (r.index, r.line))
            .collect::<Vec<_>>(),
        vec![
            (0, Some(1)),
            (1, Some(3)),
            (2, Some(4)),
            (3, Some(5)),
            (4, Some(7))
        ]
    );
    assert_eq!(
        emails(&records),
        vec![
            Some("a@x.com".into()),
            Some("b@x.com".into()),
            None,
            None,
            Some("c@x.com".into())
        ]
    );
    assert_eq!(
        records[2].value.as_ref().unwrap_err(),
        "invalid JSON at column 11: expected value"
    );
    assert_eq!(
        records[3].value.as_ref().unwrap_err(),
        "expected a JSON object, found a string"
    );
    let message = format!(
        "{}: {}",
        records[3].location(Path::new("users.json")),
        records[3].value.as_ref().unwrap_err()
    );
    assert_eq!(
        message,
        "`users.json`, line 5, record 3: expected a JSON object, found a string"
    );
}

#[test]
fn array_with_nested_objects_and_tricky_strings() {
    let input = r#"[
  {"email":"a@x.com","app_metadata":{"tags":["]","}"],"deep":{"x":[1,{"y":2}]}}},
  {"email":"b@x.com","name":"quote \" and ] and } and \\"},
  "a string",
  {"email":"\u00e9@x.com","nickname":"\ud83d\ude00 [{"},
  42
]
"#;
    let mut r = reader(input, InputFormat::Auth0Bulk);
    let records: Vec<_> = r.by_ref().collect();
    assert!(r.take_error().is_none(), "no fatal error");
    assert_eq!(records.len(), 5);
    assert_eq!(
        records.iter().map(|r| r.index).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
    assert_eq!(
        records.iter().map(|r| r.line.unwrap()).collect::<Vec<_>>(),
        vec![2, 3, 4, 5, 6]
    );
    let first = records[0].value.as_ref().unwrap();
    assert_eq!(
        first["app_metadata"]["deep"]["x"][1]["y"],
        serde_json::json!(2)
    );
    assert_eq!(first["app_metadata"]["tags"], serde_json::json!(["]", "}"]));
    let second = records[1].value.as_ref().unwrap();
    assert_eq!(second["name"], "quote \" and ] and } and \\");
    assert_eq!(
        records[2].value.as_ref().unwrap_err(),
        "expected a JSON object, found a string"
    );
    let fourth = records[3].value.as_ref().unwrap();
    assert_eq!(fourth["email"], "é@x.com");
    assert_eq!(fourth["nickname"], "😀 [{");
    assert_eq!(
        records[4].value.as_ref().unwrap_err(),
        "expected a JSON object, found a number"
    );
}

#[test]
fn empty_array_yields_nothing() {
    let mut r = reader(" [ ] \n", InputFormat::Auth0Bulk);
    assert!(r.try_next().unwrap().is_none());
    assert!(r.try_next().unwrap().is_none());
}

#[test]
fn truncated_array_is_fatal_and_names_file_and_index() {
    let mut r = reader(
        "[{\"email\":\"a@x.com\"},{\"email\":\"b@x.com\"},{\"email\":\"c@x",
        InputFormat::Auth0Bulk,
    );
    let status = r.status();
    let records: Vec<_> = r.by_ref().collect();
    assert_eq!(records.len(), 2, "the complete records are delivered");
    let err = status.take_error().expect("a fatal error");
    assert!(matches!(err, Error::Input { .. }));
    assert_eq!(
        err.to_string(),
        "`users.json`, line 1, record 2: unexpected end of input inside a string (is the file truncated?)"
    );
    // And nothing more afterwards.
    assert!(r.next().is_none());
}

#[test]
fn array_missing_its_close_is_fatal() {
    let mut r = reader("[{\"email\":\"a@x.com\"},\n", InputFormat::Auth0Bulk);
    assert!(r.try_next().unwrap().is_some());
    let err = r.try_next().unwrap_err();
    assert_eq!(
        err.to_string(),
        "`users.json`, line 2, record 1: unexpected end of input inside the array (is the file truncated?)"
    );
}

#[test]
fn framing_errors_are_fatal() {
    let cases = [
        ("[{},]", "record 1: trailing comma before `]`"),
        ("[{},,{}]", "record 1: expected a value before `,`"),
        (
            "[{}] x",
            "record 1: unexpected `x` after the end of the array",
        ),
        (
            "{\"a\":1}",
            "record 0: expected a JSON array starting with `[`, found `{`",
        ),
        ("", "record 0: the file is empty: expected a JSON array"),
    ];
    for (input, want) in cases {
        let mut r = reader(input, InputFormat::Auth0Bulk);
        let err = loop {
            match r.try_next() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("no error for {input}"),
                Err(e) => break e,
            }
        };
        assert!(err.to_string().ends_with(want), "{input}: got {err}");
    }
}

#[test]
fn invalid_element_json_is_a_record_error_not_fatal() {
    let mut r = reader("[{\"a\":},{\"email\":\"b@x.com\"}]", InputFormat::Auth0Bulk);
    let records: Vec<_> = r.by_ref().collect();
    assert!(r.take_error().is_none());
    assert_eq!(records.len(), 2);
    assert!(
        records[0]
            .value
            .as_ref()
            .unwrap_err()
            .starts_with("invalid JSON: expected value")
    );
    assert_eq!(emails(&records)[1].as_deref(), Some("b@x.com"));
}

#[test]
fn authgear_body_streams_records_and_keeps_header_values() {
    let input = r#"{
  "identifier": "phone_number",
  "upsert": true,
  "note": {"records": [1, 2]},
  "records": [
{"phone_number": "+12125550001"},
{"phone_number": "+12125550002"}
  ],
  "ignored_after": "anything [ { \" even broken"
"#;
    let mut r = reader(input, InputFormat::AuthgearBody);
    let first = r.try_next().unwrap().unwrap();
    assert_eq!(r.authgear_identifier(), Some("phone_number"));
    assert_eq!(r.authgear_upsert(), Some(true));
    assert_eq!(first.index, 0);
    assert_eq!(first.value.unwrap()["phone_number"], "+12125550001");
    let second = r.try_next().unwrap().unwrap();
    assert_eq!(second.index, 1);
    assert!(r.try_next().unwrap().is_none());
}

#[test]
fn authgear_body_without_records_is_fatal() {
    let mut r = reader("{\"identifier\":\"email\"}", InputFormat::AuthgearBody);
    let err = r.try_next().unwrap_err();
    assert_eq!(
        err.to_string(),
        "`users.json`, line 1, record 0: the top-level object has no `records` array"
    );
    let mut r = reader(
        "{\"identifier\":3,\"records\":[]}",
        InputFormat::AuthgearBody,
    );
    assert!(
        r.try_next()
            .unwrap_err()
            .to_string()
            .ends_with("`identifier` must be a string")
    );
}

#[test]
fn oversized_records_are_skipped_not_held() {
    let big = "x".repeat(1000);
    let ndjson =
        format!("{{\"email\":\"a@x.com\"}}\n{{\"name\":\"{big}\"}}\n{{\"email\":\"c@x.com\"}}\n");
    let mut r = reader(&ndjson, InputFormat::Neutral).with_max_record_bytes(100);
    let records: Vec<_> = r.by_ref().collect();
    assert_eq!(records.len(), 3);
    assert_eq!(
        records[1].value.as_ref().unwrap_err(),
        "the record is larger than 100 bytes"
    );
    assert_eq!(emails(&records)[2].as_deref(), Some("c@x.com"));

    let array =
        format!("[{{\"email\":\"a@x.com\"}},{{\"name\":\"{big}\"}},{{\"email\":\"c@x.com\"}}]");
    let mut r = reader(&array, InputFormat::Auth0Bulk).with_max_record_bytes(100);
    let records: Vec<_> = r.by_ref().collect();
    assert!(r.take_error().is_none());
    assert_eq!(records.len(), 3);
    assert!(records[1].value.is_err());
    assert_eq!(emails(&records)[2].as_deref(), Some("c@x.com"));
}

#[test]
fn bom_is_skipped() {
    let mut r = reader("\u{feff}{\"email\":\"a@x.com\"}\n", InputFormat::Neutral);
    assert!(r.next().unwrap().value.is_ok());
    let mut r = reader("\u{feff}[{\"email\":\"a@x.com\"}]", InputFormat::Auth0Bulk);
    assert!(r.next().unwrap().value.is_ok());
}

#[test]
fn corrupt_gzip_is_an_io_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.ndjson.gz");
    std::fs::write(
        &path,
        [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff],
    )
    .unwrap();
    let mut r = RecordReader::open(&path, InputFormat::Neutral).unwrap();
    let err = r.try_next().unwrap_err();
    assert!(matches!(err, Error::Io { action: "read", .. }), "{err}");
    assert!(err.to_string().contains("users.ndjson.gz"));
}

#[test]
fn hundred_thousand_ndjson_records_stream_in_small_memory() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.ndjson.gz");
    let mut w = flate2::write::GzEncoder::new(
        std::io::BufWriter::new(std::fs::File::create(&path).unwrap()),
        flate2::Compression::fast(),
    );
    for i in 0..100_000 {
        writeln!(
            w,
            "{{\"email\":\"user_{i:06}@example.com\",\"email_verified\":true}}"
        )
        .unwrap();
    }
    w.finish().unwrap().flush().unwrap();

    let mut r = RecordReader::open_auto(&path).unwrap();
    assert_eq!(r.format(), InputFormat::Neutral);
    let mut count = 0u64;
    let mut max_capacity = 0;
    while let Some(rec) = r.try_next().unwrap() {
        assert_eq!(rec.index, count);
        let obj = rec.value.unwrap();
        assert_eq!(obj["email"], format!("user_{count:06}@example.com"));
        max_capacity = max_capacity.max(r.buf.capacity());
        count += 1;
    }
    assert_eq!(count, 100_000);
    assert!(max_capacity <= 1024, "line buffer grew to {max_capacity}");
}

#[test]
fn big_array_streams_with_a_small_buffer() {
    let mut input = String::from("[");
    for i in 0..20_000 {
        if i > 0 {
            input.push(',');
        }
        input.push_str(&format!("{{\"email\":\"u{i}@x.com\"}}"));
    }
    input.push(']');
    let mut r = reader(&input, InputFormat::Auth0Bulk);
    let mut count = 0;
    while let Some(rec) = r.try_next().unwrap() {
        assert!(rec.value.is_ok());
        assert!(r.buf.capacity() <= 1024);
        count += 1;
    }
    assert_eq!(count, 20_000);
}
