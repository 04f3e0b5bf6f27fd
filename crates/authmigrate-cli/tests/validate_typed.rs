//! `validate --for authgear --custom-attribute SRC=DST:TYPE` reports what the import
//! would: values that do not fit their type, in native bodies and converted records.

mod common;

use std::process::Command;

fn validate(dir: &std::path::Path, file: &str, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec!["validate", "--for", "authgear"];
    args.extend_from_slice(extra);
    args.push(file);
    let o = Command::new(env!("CARGO_BIN_EXE_authmigrate"))
        .args(&args)
        .current_dir(dir)
        .output()
        .unwrap();
    (o.status.code(), common::text(&o))
}

#[test]
fn typed_attributes_are_checked_in_native_bodies_and_converted_records() {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body.json");
    std::fs::write(
        &body,
        r#"{"identifier":"email","records":[
            {"email":"a@t.io","custom_attributes":{"age":42}},
            {"email":"b@t.io","custom_attributes":{"age":"42"}},
            {"email":"c@t.io","custom_attributes":{"age":200}}]}"#,
    )
    .unwrap();
    let (code, out) = validate(
        dir.path(),
        body.to_str().unwrap(),
        &["--custom-attribute", "user_metadata.age=age:integer:0:150"],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(!out.contains("record 0"), "{out}");
    assert!(
        out.contains("record 1: field `custom_attributes.age`"),
        "{out}"
    );
    assert!(
        out.contains("record 2: field `custom_attributes.age`"),
        "{out}"
    );
    // Without the declaration nothing is known about the type.
    let (code, out) = validate(dir.path(), body.to_str().unwrap(), &[]);
    assert_eq!(code, Some(0), "{out}");

    // A converted record: the attribute is left out with a warning, the user stays valid.
    let neutral = dir.path().join("users.ndjson");
    std::fs::write(
        &neutral,
        "{\"email\":\"d@t.io\",\"user_metadata\":{\"age\":\"old\"}}\n",
    )
    .unwrap();
    let (code, out) = validate(
        dir.path(),
        neutral.to_str().unwrap(),
        &["--custom-attribute", "user_metadata.age=age:integer"],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("record 0") && out.contains("warning") && out.contains("age"),
        "{out}"
    );
}
