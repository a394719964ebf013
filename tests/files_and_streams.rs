//! Uploads, stored files and the streamed CSV export of the ported routes, where a parity
//! snapshot cannot see: the files on disk, the names the storage chose, names that try to leave
//! MEDIA_ROOT, memory while a large body passes, clients that leave halfway, and the server
//! serving on afterwards. The real binary serves the repository's routes.toml (Rust for these
//! routes) and, where the answer is compared, a second one serves the same site with every entry
//! switched to Django.

mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use regex::Regex;
use support::{Response, Server, Site, request};

const TOKEN: &str = "abcdefghijklmnopqrstuvwxyzABCDEF";

/// One side: a server and the site it serves, with a temporary directory of its own for uploads
/// in progress (TMPDIR), so a test can see that nothing is left there.
struct Side {
    server: Server,
    site: Site,
    temp: tempfile::TempDir,
}

impl Side {
    fn new(mode: &str, routes_dir: &Path, extra: &[&str]) -> Side {
        let site = Site::new();
        let temp = tempfile::tempdir().expect("temp dir");
        let mut env = site.env();
        env.push(("FICUS_LOG".into(), "info,ficus=debug".into()));
        env.push(("TMPDIR".into(), temp.path().display().to_string()));
        let routes = support::routes_with_mode(routes_dir, mode);
        let mut args = vec!["--routes", routes.as_str()];
        args.extend_from_slice(extra);
        Side {
            server: Server::ficus(&args, &env),
            site,
            temp,
        }
    }

    fn media(&self) -> PathBuf {
        self.site.dir.path().join("media")
    }

    fn upload(&self, filename: &str, content_type: Option<&str>, bytes: &[u8]) -> Response {
        let body = multipart(
            &[Part::Field("csrfmiddlewaretoken", TOKEN)],
            Some((filename, content_type, bytes)),
        );
        post_multipart(self.server.addr, &body)
    }

    /// Files under MEDIA_ROOT/uploads, by name.
    fn stored(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.media().join("uploads"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    fn temp_files(&self) -> usize {
        std::fs::read_dir(self.temp.path()).map_or(0, |entries| entries.count())
    }

    /// The rows of media_upload, as Django reads them.
    fn rows(&self) -> String {
        support::django_shell(
            &self.site,
            "from media.models import Upload; print([(u.file.name, u.size) for u in Upload.objects.order_by('id')])",
        )
    }
}

enum Part<'a> {
    Field(&'a str, &'a str),
}

/// A multipart body with boundary `XyZ`: the fields, then the file (name, type, bytes).
fn multipart(fields: &[Part<'_>], file: Option<(&str, Option<&str>, &[u8])>) -> Vec<u8> {
    let mut body = Vec::new();
    for Part::Field(name, value) in fields {
        body.extend_from_slice(
            format!("--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    if let Some((filename, content_type, bytes)) = file {
        body.extend_from_slice(
            format!("--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n")
                .as_bytes(),
        );
        if let Some(content_type) = content_type {
            body.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--XyZ--\r\n");
    body
}

fn post_multipart(addr: std::net::SocketAddr, body: &[u8]) -> Response {
    let cookie = format!("csrftoken={TOKEN}");
    request(
        addr,
        "POST",
        "/media/upload/",
        &[
            ("Content-Type", "multipart/form-data; boundary=XyZ"),
            ("Cookie", &cookie),
        ],
        body,
    )
}

/// What is random on each side, masked: the stored name's suffix (`get_available_name`), and a
/// new CSRF cookie, its expiry, and the token a page masks with it.
fn masked(text: &str) -> String {
    let text = Regex::new(r"_[0-9A-Za-z]{7}(\.|\x22|$)")
        .unwrap()
        .replace_all(text, "_<suffix>$1");
    let text = Regex::new(r"csrftoken=[0-9A-Za-z]{32}")
        .unwrap()
        .replace_all(&text, "csrftoken=<secret>");
    // The cookie's expiry is a second-resolution clock: the two sides answer a moment apart.
    let text = Regex::new(r"(?i)expires=[^;]+")
        .unwrap()
        .replace_all(&text, "expires=<date>");
    Regex::new(r#"name="csrfmiddlewaretoken" value="[0-9A-Za-z]{64}""#)
        .unwrap()
        .replace_all(&text, "<token>")
        .into_owned()
}

/// Status, headers but Date, and body, with the storage's random suffixes masked.
fn normalised(response: &Response) -> (u16, Vec<(String, String)>, String) {
    let headers = response
        .headers
        .iter()
        .filter(|(name, _)| name != "Date")
        .map(|(name, value)| (name.clone(), masked(value)))
        .collect();
    (response.status, headers, masked(&response.text()))
}

#[test]
fn uploads_are_stored_named_and_served_back_as_django_does() {
    let routes = tempfile::tempdir().expect("temp dir");
    let rust = Side::new("rust", routes.path(), &[]);
    let django = Side::new("django", routes.path(), &[]);
    // Longer than the 255 characters of UploadedFile.name and of the FileField, within the 1024
    // bytes of a part's headers; and one of ten thousand characters.
    let long_name = format!("{}.txt", "n".repeat(600));
    let huge_name = format!("{}.txt", "n".repeat(10_000));
    let uploads: Vec<(&str, Option<&str>, &[u8])> = vec![
        ("notes.txt", Some("text/plain"), b"first"),
        // The same name again: never overwritten, a random suffix instead.
        ("notes.txt", Some("text/plain"), b"second"),
        ("r\u{e9}sum\u{e9} final (2).PDF", None, b"%PDF-1.4"),
        (
            "archive.tar.gz",
            Some("application/gzip"),
            b"\x1f\x8b\x08\x00",
        ),
        ("../../outside.txt", Some("text/plain"), b"stays inside"),
        (
            "C:\\Users\\ana\\photo.JPG",
            Some("IMAGE/JPEG; charset=x"),
            b"\xff\xd8\xff",
        ),
        (
            "a&#7;b&#x1F;.txt",
            Some("text/plain"),
            b"unprintable dropped",
        ),
        (long_name.as_str(), Some("text/plain"), b"a long name"),
        (
            huge_name.as_str(),
            Some("text/plain"),
            b"a name of ten thousand characters",
        ),
    ];
    for (filename, content_type, bytes) in &uploads {
        let ours = rust.upload(filename, *content_type, bytes);
        let theirs = django.upload(filename, *content_type, bytes);
        assert_eq!(normalised(&ours), normalised(&theirs), "{filename}");
        if filename.len() > 1000 {
            // A part's headers over MAX_TOTAL_HEADER_SIZE: Django's 400 page, nothing stored.
            assert_eq!(ours.status, 400, "{}", ours.text());
            continue;
        }
        assert_eq!(ours.status, 201, "{filename}: {}", ours.text());
        // What was stored is what was sent, where the answer says, readable as Django makes it.
        let name = ours.json()["name"].as_str().expect("name").to_owned();
        let path = rust.media().join(&name);
        assert_eq!(std::fs::read(&path).expect("stored file"), *bytes, "{name}");
        let mode = std::fs::metadata(&path).expect("metadata").permissions();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.mode() & 0o777, 0o644, "FILE_UPLOAD_PERMISSIONS");
        // And sent back as FileResponse sends it.
        let url = ours.json()["url"].as_str().expect("url").to_owned();
        let served = support::get(rust.server.addr, &url);
        let reference = support::get(
            django.server.addr,
            &url.replace(&name, theirs.json()["name"].as_str().unwrap_or_default()),
        );
        assert_eq!(served.status, 200, "{url}");
        assert_eq!(served.body, *bytes, "{url}");
        assert_eq!(normalised(&served), normalised(&reference), "{url}");
    }
    assert_eq!(
        rust.stored().len(),
        uploads.len() - 1,
        "{:?}",
        rust.stored()
    );
    // A raw control byte in a part's header: Django drops it from the name, ficus's multipart
    // parser refuses the header, so the file is missing (the view's 400) and nothing is stored.
    let ours = rust.upload("a\u{0}b.txt", Some("text/plain"), b"x");
    assert_eq!(ours.status, 400, "{}", ours.text());
    assert_eq!(ours.json()["fields"][0], "file");
    assert_eq!(rust.stored().len(), uploads.len() - 1);
    assert_eq!(masked(&rust.rows()), masked(&django.rows()));
    // The upload page lists them, as Django's does.
    let ours = support::get(rust.server.addr, "/media/upload/");
    let theirs = support::get(django.server.addr, "/media/upload/");
    assert_eq!(normalised(&ours), normalised(&theirs));
    assert_eq!(rust.temp_files(), 0, "temporary upload files are gone");
    assert!(
        rust.server
            .log()
            .contains("served by the Rust handler media::upload")
    );
}

#[test]
fn stored_files_never_leave_media_root() {
    let routes = tempfile::tempdir().expect("temp dir");
    let rust = Side::new("rust", routes.path(), &[]);
    let django = Side::new("django", routes.path(), &[]);
    for side in [&rust, &django] {
        let uploads = side.media().join("uploads");
        std::fs::create_dir_all(&uploads).expect("uploads dir");
        std::fs::write(uploads.join("ok.txt"), b"inside").expect("write");
        std::fs::write(side.site.dir.path().join("secret.txt"), b"outside").expect("write");
        std::os::unix::fs::symlink(
            side.site.dir.path().join("secret.txt"),
            uploads.join("link.txt"),
        )
        .expect("symlink");
        std::os::unix::fs::symlink(uploads.join("ok.txt"), uploads.join("inner-link.txt"))
            .expect("symlink");
    }
    let targets = [
        "/media/files/uploads/ok.txt",
        "/media/files/uploads/inner-link.txt",
        "/media/files/uploads/",
        "/media/files/uploads/missing.txt",
        "/media/files/../secret.txt",
        "/media/files/uploads/../../secret.txt",
        "/media/files/uploads/%2e%2e/%2e%2e/secret.txt",
        "/media/files/uploads%2f..%2f..%2fsecret.txt",
        "/media/files//etc/passwd",
        "/media/files/%2Fetc%2Fpasswd",
        "/media/files/uploads/ok.txt%00.png",
    ];
    for target in targets {
        let ours = support::get(rust.server.addr, target);
        let theirs = support::get(django.server.addr, target);
        assert_eq!(normalised(&ours), normalised(&theirs), "{target}");
        assert!(!ours.text().contains("outside"), "{target}");
    }
    // A symlink out of MEDIA_ROOT: Django's safe_join is lexical and would send the file;
    // ficus resolves the link and answers 404.
    let ours = support::get(rust.server.addr, "/media/files/uploads/link.txt");
    assert_eq!(ours.status, 404, "{}", ours.text());
    let theirs = support::get(django.server.addr, "/media/files/uploads/link.txt");
    assert_eq!(
        theirs.status,
        200,
        "Django follows the link: {}",
        theirs.text()
    );
    // A Range is ignored, as Django ignores it: the whole file, 200.
    let ranged = request(
        rust.server.addr,
        "GET",
        "/media/files/uploads/ok.txt",
        &[("Range", "bytes=2-3")],
        b"",
    );
    let reference = request(
        django.server.addr,
        "GET",
        "/media/files/uploads/ok.txt",
        &[("Range", "bytes=2-3")],
        b"",
    );
    assert_eq!(ranged.status, 200);
    assert_eq!(ranged.body, b"inside");
    assert_eq!(normalised(&ranged), normalised(&reference));
    assert!(
        rust.server
            .log()
            .contains("served by the Rust handler media::serve_file")
    );
}

#[test]
fn upload_limits_and_broken_bodies_get_djangos_answers_and_store_nothing() {
    let routes = tempfile::tempdir().expect("temp dir");
    let rust = Side::new("rust", routes.path(), &[]);
    let django = Side::new("django", routes.path(), &[]);
    let token = [Part::Field("csrfmiddlewaretoken", TOKEN)];
    let mut many_files = Vec::new();
    for i in 0..101 {
        many_files.extend_from_slice(
            format!("--XyZ\r\nContent-Disposition: form-data; name=\"f{i}\"; filename=\"f{i}.txt\"\r\n\r\nx\r\n").as_bytes(),
        );
    }
    let mut too_many_files = multipart(&token, None);
    too_many_files.splice(0..0, many_files);
    let big_field = "v".repeat(2_700_000);
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("101 files", too_many_files),
        (
            "a field over DATA_UPLOAD_MAX_MEMORY_SIZE",
            multipart(&[Part::Field("csrfmiddlewaretoken", TOKEN), Part::Field("note", &big_field)], Some(("a.txt", None, b"x"))),
        ),
        (
            "a file over DATA_UPLOAD_MAX_MEMORY_SIZE is fine",
            multipart(&token, Some(("big.bin", Some("application/octet-stream"), &vec![7u8; 3_000_000]))),
        ),
        ("no closing boundary", b"--XyZ\r\nContent-Disposition: form-data; name=\"csrfmiddlewaretoken\"\r\n\r\nabcdefghijklmnopqrstuvwxyzABCDEF\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut.txt\"\r\n\r\nhalf".to_vec()),
    ];
    let mut statuses = Vec::new();
    for (what, body) in &bodies {
        let ours = post_multipart(rust.server.addr, body);
        let theirs = post_multipart(django.server.addr, body);
        assert_eq!(normalised(&ours), normalised(&theirs), "{what}");
        statuses.push(ours.status);
    }
    assert_eq!(statuses, [400, 400, 201, 400]);
    assert_eq!(rust.stored(), ["big.bin"]);
    assert_eq!(rust.temp_files(), 0);

    // Over --max-body-size: ficus's own 413, before anything is read or stored.
    let small = Side::new("rust", routes.path(), &["--max-body-size", "100000"]);
    let answer = small.upload("big.bin", None, &vec![1u8; 200_000]);
    assert_eq!(answer.status, 413, "{}", answer.text());
    assert!(small.stored().is_empty());
    assert_eq!(support::get(small.server.addr, "/healthz").status, 200);
}

/// The server's peak resident memory so far (VmHWM), in kB.
fn peak_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[test]
fn a_large_upload_streams_to_disk_and_a_client_leaving_midway_leaves_nothing() {
    let routes = tempfile::tempdir().expect("temp dir");
    let rust = Side::new("rust", routes.path(), &[]);
    // Warm the handler's paths up so the peak below is the upload's.
    assert_eq!(rust.upload("warm.txt", None, b"w").status, 201);
    let before = peak_kb(rust.server.pid());

    let size = 40 * 1024 * 1024;
    let head = multipart(&[Part::Field("csrfmiddlewaretoken", TOKEN)], None);
    let head = &head[..head.len() - b"--XyZ--\r\n".len()];
    let file_head = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"large.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n";
    let tail = b"\r\n--XyZ--\r\n";
    let length = head.len() + file_head.len() + size + tail.len();
    let send = |leave_after: Option<usize>| {
        let mut stream = support::connect(rust.server.addr);
        let cookie = format!("csrftoken={TOKEN}");
        write!(
            stream,
            "POST /media/upload/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nCookie: {cookie}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
        )
        .expect("head");
        stream.write_all(head).expect("fields");
        stream.write_all(file_head).expect("file head");
        let chunk = vec![b'x'; 1024 * 1024];
        let mut sent = 0;
        while sent < size {
            if leave_after.is_some_and(|limit| sent >= limit) {
                return None;
            }
            stream.write_all(&chunk).expect("file bytes");
            sent += chunk.len();
        }
        stream.write_all(tail).expect("tail");
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        Some(support::parse_response(&answer, false).0)
    };
    let answer = send(None).expect("an answer");
    assert_eq!(answer.status, 201, "{}", answer.text());
    assert_eq!(answer.json()["size"], size);
    let stored = std::fs::metadata(rust.media().join("uploads/large.bin")).expect("stored");
    assert_eq!(stored.len(), size as u64);
    let grown_mb = (peak_kb(rust.server.pid()).saturating_sub(before)) / 1024;
    assert!(
        grown_mb < 16,
        "a 40 MB upload grew the server's peak memory by {grown_mb} MB"
    );

    // Half an upload, then the client is gone: no file, no row, no temporary file.
    let rows = rust.rows();
    assert!(send(Some(size / 2)).is_none());
    let settled = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        rust.temp_files() == 0
    });
    assert!(settled, "a temporary file was left behind");
    assert_eq!(rust.stored(), ["large.bin", "warm.txt"]);
    assert_eq!(rust.rows(), rows);
    assert_eq!(support::get(rust.server.addr, "/healthz").status, 200);
}

#[test]
fn concurrent_uploads_of_one_name_each_get_a_name_of_their_own() {
    let routes = tempfile::tempdir().expect("temp dir");
    let rust = Side::new("rust", routes.path(), &[]);
    let addr = rust.server.addr;
    let uploads: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || {
                let body = multipart(
                    &[Part::Field("csrfmiddlewaretoken", TOKEN)],
                    Some(("same.txt", None, format!("upload {i}").as_bytes())),
                );
                post_multipart(addr, &body)
            })
        })
        .collect();
    let mut names = Vec::new();
    for upload in uploads {
        let answer = upload.join().expect("upload");
        assert_eq!(answer.status, 201, "{}", answer.text());
        names.push(answer.json()["name"].as_str().expect("name").to_owned());
    }
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 8, "{names:?}");
    let mut contents: Vec<String> = rust
        .stored()
        .iter()
        .map(|name| std::fs::read_to_string(rust.media().join("uploads").join(name)).expect("read"))
        .collect();
    contents.sort();
    let expected: Vec<String> = (0..8).map(|i| format!("upload {i}")).collect();
    assert_eq!(contents, expected);
}

#[test]
fn the_csv_export_streams_and_a_reader_that_stops_halfway_costs_the_server_nothing() {
    let routes = tempfile::tempdir().expect("temp dir");
    let rust = Side::new("rust", routes.path(), &[]);
    let django = Side::new("django", routes.path(), &[]);
    // More rows than one chunk of 200, on both sides.
    let grow = "from django.contrib.auth.models import User; from articles.models import Article; \
        from django.utils import timezone; u = User.objects.get(username='alice'); \
        Article.objects.bulk_create(Article(title=f'Row {i}, \"quoted\"\\nline', slug=f'row-{i}', body='b', author=u, published_at=timezone.now()) for i in range(1000))";
    support::django_shell(&rust.site, grow);
    support::django_shell(&django.site, grow);

    let ours = support::get(rust.server.addr, "/reports/articles.csv");
    let theirs = support::get(django.server.addr, "/reports/articles.csv");
    assert_eq!(ours.status, 200);
    assert_eq!(ours.header("Transfer-Encoding"), Some("chunked"));
    assert!(ours.header("Content-Length").is_none());
    // The published times of the new rows are the times they were made on each side.
    let time = Regex::new(r"\d{4}-\d\d-\d\dT[0-9:.]+\+00:00").unwrap();
    assert_eq!(
        time.replace_all(&ours.text(), "<t>"),
        time.replace_all(&theirs.text(), "<t>")
    );
    assert_eq!(ours.text().matches("\r\n").count(), 1 + 30 + 1000);

    // Readers that take the first bytes and leave: more of them than the pool has connections.
    for _ in 0..12 {
        let first = support::read_first_then_leave(
            rust.server.addr,
            b"GET /reports/articles.csv HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        );
        assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    }
    // A reader that stops reading (but stays): the server waits, and serves others meanwhile.
    let mut stalled = support::connect(rust.server.addr);
    stalled
        .write_all(b"GET /reports/articles.csv HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("write");
    let mut first = [0u8; 64];
    let _ = stalled.read(&mut first).expect("first bytes");
    let again = support::get(rust.server.addr, "/reports/articles.csv");
    assert_eq!(again.body, ours.body);
    assert_eq!(support::get(rust.server.addr, "/healthz").status, 200);
    drop(stalled);
    assert!(
        rust.server
            .log()
            .contains("served by the Rust handler reports::articles_csv")
    );
}
