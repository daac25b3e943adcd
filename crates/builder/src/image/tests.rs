use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;

use zip::write::SimpleFileOptions;

use super::*;

fn write(root: &Path, path: &str, content: &[u8], mode: u32) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
    std::fs::write(&path, content).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// `len` bytes no deflate can shrink (xorshift64), the same on every run.
fn incompressible(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// One entry as read back: a directory (`None`) or a file's content, with its mode.
type Listing = Vec<(String, u32, Option<Vec<u8>>)>;

/// A zip's entries in their order.
fn listing(zip: &Path) -> Listing {
    let mut archive = zip::ZipArchive::new(File::open(zip).expect("zip")).expect("archive");
    (0..archive.len())
        .map(|index| {
            let mut entry = archive.by_index(index).expect("entry");
            let mode = entry.unix_mode().expect("a mode") & 0o777;
            let content = (!entry.is_dir()).then(|| {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).expect("content");
                bytes
            });
            (entry.name().expect("name").into_owned(), mode, content)
        })
        .collect()
}

fn never() -> AtomicBool {
    AtomicBool::new(false)
}

#[test]
fn an_already_compressed_file_is_stored_and_the_rest_deflated() {
    let temp = tempfile::tempdir().expect("temp dir");
    let root = temp.path().join("tree");
    let noise = incompressible(1 << 20);
    let text = "GET /api/orders 200 12ms\n".repeat(40_000);
    write(&root, "assets/model.bin", &noise, 0o644);
    write(&root, "logs/sample.log", text.as_bytes(), 0o644);
    // Small files are deflated without a probe, whatever they hold.
    write(&root, "small.bin", &noise[..1000], 0o644);
    let zipped = zip_directory(&root, &temp.path().join("a.zip"), &never()).expect("zip");
    let mut archive =
        zip::ZipArchive::new(File::open(&zipped.path).expect("zip")).expect("archive");
    let method = |archive: &mut zip::ZipArchive<File>, name: &str| {
        archive.by_name(name).expect(name).compression()
    };
    assert_eq!(
        method(&mut archive, "assets/model.bin"),
        zip::CompressionMethod::Stored
    );
    assert_eq!(
        method(&mut archive, "logs/sample.log"),
        zip::CompressionMethod::Deflated
    );
    assert_eq!(
        method(&mut archive, "small.bin"),
        zip::CompressionMethod::Deflated
    );
    let files = listing(&zipped.path);
    let content = |name: &str| files.iter().find(|f| f.0 == name).and_then(|f| f.2.clone());
    assert_eq!(content("assets/model.bin"), Some(noise));
    assert_eq!(content("logs/sample.log"), Some(text.into_bytes()));
}

#[test]
fn zip_round_trip_keeps_content_and_modes_and_is_reproducible() {
    let temp = tempfile::tempdir().expect("temp dir");
    let root = temp.path().join("tree");
    write(&root, "bin/run.sh", b"#!/bin/sh\necho hi\n", 0o755);
    write(&root, "conf/app.json", b"{}", 0o644);
    std::fs::create_dir_all(root.join("empty")).expect("mkdir");
    std::fs::set_permissions(root.join("conf"), std::fs::Permissions::from_mode(0o700))
        .expect("chmod");
    let first = zip_directory(&root, &temp.path().join("a.zip"), &never()).expect("zip");
    let second = zip_directory(&root, &temp.path().join("b.zip"), &never()).expect("zip");
    assert_eq!(first.sha256, second.sha256, "same files give the same zip");
    assert_eq!(first.content_digest, second.content_digest);
    assert_eq!(
        first.size,
        std::fs::metadata(&first.path).expect("zip").len()
    );
    assert!(!partial_path(&first.path).exists());
    let entry = |name: &str, mode: u32, content: Option<&[u8]>| {
        (name.to_owned(), mode, content.map(<[u8]>::to_vec))
    };
    assert_eq!(
        listing(&first.path),
        vec![
            entry("bin/", 0o755, None),
            entry("bin/run.sh", 0o755, Some(b"#!/bin/sh\necho hi\n")),
            entry("conf/", 0o700, None),
            entry("conf/app.json", 0o644, Some(b"{}")),
            entry("empty/", 0o755, None),
        ]
    );

    write(&root, "conf/app.json", b"{\"a\":1}", 0o644);
    let third = zip_directory(&root, &temp.path().join("c.zip"), &never()).expect("zip");
    assert_ne!(first.content_digest, third.content_digest);
}

#[test]
fn an_interrupted_zip_leaves_no_file() {
    let temp = tempfile::tempdir().expect("temp dir");
    let root = temp.path().join("tree");
    write(&root, "a", b"a", 0o644);
    let destination = temp.path().join("a.zip");
    let error =
        zip_directory(&root, &destination, &AtomicBool::new(true)).expect_err("interrupted");
    assert!(matches!(error, BuilderError::Cancelled { .. }), "{error}");
    assert!(!destination.exists() && !partial_path(&destination).exists());
}

/// A developer image's tree: a large log (deflated), noise (stored), modes of every kind.
fn developer_tree(root: &Path) {
    write(root, "assets/model.bin", &incompressible(300_000), 0o644);
    write(root, "bin/run.sh", b"#!/bin/sh\nexec ./app\n", 0o755);
    write(root, "conf/app.json", b"{\"port\": 8000}\n", 0o640);
    write(
        root,
        "logs/sample.log",
        "GET /api/orders 200 12ms\n".repeat(20_000).as_bytes(),
        0o644,
    );
    std::fs::create_dir_all(root.join("empty")).expect("mkdir");
    std::fs::set_permissions(root.join("conf"), std::fs::Permissions::from_mode(0o750))
        .expect("chmod");
}

#[test]
fn a_repacked_image_is_the_zip_of_the_changed_tree_with_the_rest_copied_as_compressed() {
    let temp = tempfile::tempdir().expect("temp dir");
    let developer = temp.path().join("developer");
    developer_tree(&developer);
    let image = zip_directory(&developer, &temp.path().join("dev.zip"), &never()).expect("zip");
    let key = temp.path().join("key.pem");
    write(temp.path(), "key.pem", b"-----BEGIN KEY-----\n", 0o600);

    let additions = || {
        vec![
            Addition::Bytes {
                path: "conf/app.json".to_owned(),
                bytes: b"{\"port\": 9000}\n".to_vec(),
                mode: 0o640,
            },
            Addition::Bytes {
                path: "extra/deep/new.conf".to_owned(),
                bytes: b"name = client\n".to_vec(),
                mode: 0o644,
            },
            Addition::File {
                path: "conf/key.pem".to_owned(),
                source: key.clone(),
                mode: 0o600,
            },
            Addition::Directory {
                path: "conf".to_owned(),
            },
        ]
    };
    let repack_to = |name: &str| {
        let source = SourceImage::open(&image.path, 1 << 30).expect("open");
        repack(source, additions(), &temp.path().join(name), &never()).expect("repack")
    };
    let repacked = repack_to("client.zip");

    // What unpacking, changing and zipping the tree again made before.
    let changed = temp.path().join("changed");
    developer_tree(&changed);
    write(&changed, "conf/app.json", b"{\"port\": 9000}\n", 0o640);
    write(&changed, "extra/deep/new.conf", b"name = client\n", 0o644);
    write(&changed, "conf/key.pem", b"-----BEGIN KEY-----\n", 0o600);
    let rezipped =
        zip_directory(&changed, &temp.path().join("rezipped.zip"), &never()).expect("zip");
    assert_eq!(listing(&repacked.path), listing(&rezipped.path));
    assert_eq!(repacked.content_digest, rezipped.content_digest);
    assert_eq!(
        repack_to("again.zip").sha256,
        repacked.sha256,
        "reproducible"
    );

    // The unchanged files' compressed bytes are the developer image's own.
    let mut before = zip::ZipArchive::new(File::open(&image.path).expect("zip")).expect("zip");
    let mut after = zip::ZipArchive::new(File::open(&repacked.path).expect("zip")).expect("zip");
    for name in ["assets/model.bin", "logs/sample.log"] {
        let raw = |archive: &mut zip::ZipArchive<File>| {
            let mut entry = archive.by_name_raw(name.as_bytes()).expect(name);
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).expect("raw bytes");
            (entry.compression(), entry.crc32(), bytes)
        };
        assert_eq!(raw(&mut before), raw(&mut after), "{name}");
    }
}

#[test]
fn a_zip_made_elsewhere_is_repacked_in_path_order_with_its_directories() {
    let temp = tempfile::tempdir().expect("temp dir");
    let path = temp.path().join("elsewhere.zip");
    let mut zip = zip::ZipWriter::new(File::create(&path).expect("create"));
    let options = SimpleFileOptions::default();
    for (name, content) in [("z/b.txt", "b"), ("./a.txt", "a"), ("z/a.txt", "a2")] {
        // Stored, where this builder would deflate: a copy keeps it so, a rewrite would not.
        let options = options
            .unix_permissions(0o4755)
            .compression_method(zip::CompressionMethod::Stored);
        zip.start_file(name, options).expect("entry");
        zip.write_all(content.as_bytes()).expect("write");
    }
    zip.add_directory("z/", options.unix_permissions(0o700))
        .expect("directory after its files");
    zip.finish().expect("finish");

    let source = SourceImage::open(&path, 1 << 20).expect("open");
    let repacked =
        repack(source, Vec::new(), &temp.path().join("out.zip"), &never()).expect("repack");
    let entry = |name: &str, mode: u32, content: Option<&str>| {
        (
            name.to_owned(),
            mode,
            content.map(|c| c.as_bytes().to_vec()),
        )
    };
    assert_eq!(
        listing(&repacked.path),
        vec![
            entry("a.txt", 0o755, Some("a")),
            entry("z/", 0o700, None),
            entry("z/a.txt", 0o755, Some("a2")),
            entry("z/b.txt", 0o755, Some("b")),
        ]
    );
    let mut archive = zip::ZipArchive::new(File::open(&repacked.path).expect("zip")).expect("zip");
    let method = |archive: &mut zip::ZipArchive<File>, name: &str| {
        archive.by_name(name).expect(name).compression()
    };
    assert_eq!(
        method(&mut archive, "z/a.txt"),
        zip::CompressionMethod::Stored,
        "copied as it was"
    );
    assert_eq!(
        method(&mut archive, "a.txt"),
        zip::CompressionMethod::Deflated,
        "`./a.txt` written again under its path"
    );
}

#[test]
fn a_damaged_entry_is_found_by_its_crc_and_leaves_nothing() {
    let temp = tempfile::tempdir().expect("temp dir");
    let root = temp.path().join("tree");
    let noise = incompressible(100_000);
    write(&root, "model.bin", &noise, 0o644);
    let zip = zip_directory(&root, &temp.path().join("a.zip"), &never()).expect("zip");
    let mut bytes = std::fs::read(&zip.path).expect("zip");
    // The noise is stored: find a run of it in the zip and change one byte.
    let at = bytes
        .windows(64)
        .position(|window| window == &noise[50_000..50_064])
        .expect("stored bytes");
    bytes[at] ^= 0xff;
    std::fs::write(&zip.path, &bytes).expect("damage");
    let out = temp.path().join("out.zip");
    let source = SourceImage::open(&zip.path, 1 << 20).expect("open");
    let error = repack(source, Vec::new(), &out, &never()).expect_err("damaged");
    assert!(matches!(error, BuilderError::Unpack { .. }), "{error}");
    assert!(error.to_string().contains("model.bin"), "{error}");
    assert!(!out.exists() && !partial_path(&out).exists());
}

#[test]
fn a_source_image_past_the_cap_is_refused_and_leaves_nothing() {
    let temp = tempfile::tempdir().expect("temp dir");
    let root = temp.path().join("tree");
    write(&root, "big", &vec![7; 10_000], 0o644);
    let zip = zip_directory(&root, &temp.path().join("a.zip"), &never()).expect("zip");
    let out = temp.path().join("out.zip");
    let source = SourceImage::open(&zip.path, 9_999).expect("open");
    let error = repack(source, Vec::new(), &out, &never()).expect_err("over the cap");
    assert!(
        error
            .to_string()
            .contains("larger than the limit of 9999 bytes"),
        "{error}"
    );
    assert!(!out.exists() && !partial_path(&out).exists());
    let source = SourceImage::open(&zip.path, 10_000).expect("open");
    repack(source, Vec::new(), &out, &never()).expect("exactly the cap is allowed");
}

/// Writes a zip's entries.
type MakeZip = dyn Fn(&mut zip::ZipWriter<File>);

#[test]
fn a_source_image_with_escaping_names_links_or_clashes_is_refused() {
    let temp = tempfile::tempdir().expect("temp dir");
    let cases: [(&str, &MakeZip); 3] = [
        ("`../escape` would be written outside", &|zip| {
            zip.start_file("../escape", SimpleFileOptions::default())
                .expect("entry");
        }),
        ("`link` is a symbolic link", &|zip| {
            zip.add_symlink("link", "/etc/passwd", SimpleFileOptions::default())
                .expect("entry");
        }),
        ("`a` is both a file and a directory", &|zip| {
            zip.start_file("a", SimpleFileOptions::default())
                .expect("entry");
            zip.start_file("a/b", SimpleFileOptions::default())
                .expect("entry");
        }),
    ];
    for (index, (expected, make)) in cases.into_iter().enumerate() {
        let path = temp.path().join(format!("{index}.zip"));
        let mut zip = zip::ZipWriter::new(File::create(&path).expect("create"));
        make(&mut zip);
        zip.finish().expect("finish");
        let error = SourceImage::open(&path, 1 << 20)
            .err()
            .unwrap_or_else(|| panic!("{expected}: opened"));
        assert!(matches!(error, BuilderError::Unpack { .. }), "{error}");
        assert!(error.to_string().contains(expected), "{error}");
    }
}
