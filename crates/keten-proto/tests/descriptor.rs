//! The encoded FileDescriptorSet that server reflection serves: it decodes, it holds the three
//! services with their methods, and every element of `keten.v1` carries a doc comment, because
//! a partner's integration engineer reads them through reflection too.

use prost::Message;
use prost_types::{FileDescriptorProto, FileDescriptorSet};

fn set() -> FileDescriptorSet {
    FileDescriptorSet::decode(keten_proto::FILE_DESCRIPTOR_SET).expect("decodes")
}

fn keten_files(set: &FileDescriptorSet) -> Vec<&FileDescriptorProto> {
    set.file
        .iter()
        .filter(|f| f.package() == "keten.v1")
        .collect()
}

#[test]
fn the_set_holds_the_three_services_and_their_methods() {
    let set = set();
    let files = keten_files(&set);
    assert_eq!(files.len(), 6);
    let services: Vec<_> = files.iter().flat_map(|f| &f.service).collect();
    let method = |service: &str, name: &str| {
        services
            .iter()
            .find(|s| s.name() == service)
            .unwrap_or_else(|| panic!("service {service}"))
            .method
            .iter()
            .find(|m| m.name() == name)
            .unwrap_or_else(|| panic!("{service}.{name}"))
            .clone()
    };
    let mut names: Vec<_> = services.iter().map(|s| s.name()).collect();
    names.sort();
    assert_eq!(names, ["Audit", "Coordination", "PartnerGateway"]);

    let publish = method("PartnerGateway", "Publish");
    assert_eq!(publish.input_type(), ".keten.v1.PublishRequest");
    assert_eq!(publish.output_type(), ".keten.v1.PublishResponse");
    for (service, m) in [
        ("Coordination", "GetFamilyPlan"),
        ("Coordination", "ListFamilies"),
        ("Audit", "ReadFamilyHistory"),
        ("Audit", "GetFamilyPlanAsOf"),
        ("Audit", "VerifyLog"),
    ] {
        let m = method(service, m);
        assert!(!m.client_streaming() && !m.server_streaming(), "{m:?}");
    }
    let watch = method("Coordination", "WatchFamilyPlan");
    assert!(watch.server_streaming() && !watch.client_streaming());

    // The imports reflection clients need are in the set too.
    assert!(
        set.file
            .iter()
            .any(|f| f.name() == "google/protobuf/timestamp.proto")
    );
}

#[test]
fn queries_ask_for_a_minimum_position() {
    let set = set();
    let messages: Vec<_> = keten_files(&set)
        .into_iter()
        .flat_map(|f| &f.message_type)
        .collect();
    for name in ["GetFamilyPlanRequest", "ListFamiliesRequest"] {
        let m = messages.iter().find(|m| m.name() == name).unwrap();
        let f = m
            .field
            .iter()
            .find(|f| f.name() == "min_position")
            .unwrap_or_else(|| panic!("{name}.min_position"));
        assert!(f.proto3_optional(), "{name}.min_position is optional");
    }
}

/// Paths in SourceCodeInfo: 4 = message_type, 5 = enum_type, 6 = service; inside a message
/// 2 = field, 3 = nested_type, 4 = enum_type, 8 = oneof_decl; inside an enum 2 = value; inside
/// a service 2 = method.
fn element_paths(file: &FileDescriptorProto) -> Vec<(Vec<i32>, String)> {
    fn message(
        out: &mut Vec<(Vec<i32>, String)>,
        path: Vec<i32>,
        m: &prost_types::DescriptorProto,
    ) {
        out.push((path.clone(), m.name().to_owned()));
        for (i, f) in m.field.iter().enumerate() {
            out.push((
                [path.as_slice(), &[2, i as i32]].concat(),
                format!("{}.{}", m.name(), f.name()),
            ));
        }
        for (i, o) in m.oneof_decl.iter().enumerate() {
            // proto3 `optional` fields have synthetic oneofs named `_field`: not written.
            if !o.name().starts_with('_') {
                out.push((
                    [path.as_slice(), &[8, i as i32]].concat(),
                    format!("{}.{}", m.name(), o.name()),
                ));
            }
        }
        for (i, n) in m.nested_type.iter().enumerate() {
            message(out, [path.as_slice(), &[3, i as i32]].concat(), n);
        }
        for (i, e) in m.enum_type.iter().enumerate() {
            enumeration(out, [path.as_slice(), &[4, i as i32]].concat(), e);
        }
    }
    fn enumeration(
        out: &mut Vec<(Vec<i32>, String)>,
        path: Vec<i32>,
        e: &prost_types::EnumDescriptorProto,
    ) {
        out.push((path.clone(), e.name().to_owned()));
        for (i, v) in e.value.iter().enumerate() {
            out.push((
                [path.as_slice(), &[2, i as i32]].concat(),
                v.name().to_owned(),
            ));
        }
    }
    let mut out = Vec::new();
    for (i, m) in file.message_type.iter().enumerate() {
        message(&mut out, vec![4, i as i32], m);
    }
    for (i, e) in file.enum_type.iter().enumerate() {
        enumeration(&mut out, vec![5, i as i32], e);
    }
    for (i, s) in file.service.iter().enumerate() {
        out.push((vec![6, i as i32], s.name().to_owned()));
        for (j, m) in s.method.iter().enumerate() {
            out.push((
                vec![6, i as i32, 2, j as i32],
                format!("{}.{}", s.name(), m.name()),
            ));
        }
    }
    out
}

#[test]
fn every_message_field_enum_value_and_method_is_documented() {
    let set = set();
    let mut undocumented = Vec::new();
    let mut checked = 0;
    for file in keten_files(&set) {
        let info = file.source_code_info.as_ref().expect("source info is kept");
        for (path, name) in element_paths(file) {
            checked += 1;
            let documented = info
                .location
                .iter()
                .any(|l| l.path == path && !l.leading_comments().trim().is_empty());
            if !documented {
                undocumented.push(format!("{}: {name}", file.name()));
            }
        }
    }
    assert!(checked > 500, "only {checked} elements found");
    assert!(
        undocumented.is_empty(),
        "undocumented:\n{}",
        undocumented.join("\n")
    );
}
