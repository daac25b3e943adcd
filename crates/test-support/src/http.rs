//! Reading raw HTTP/1.1 by hand, for tests that speak it over a plain TCP stream.

/// Whether `bytes` hold a whole HTTP/1.1 message: its head and, by its `Content-Length`
/// (none: no body), its body.
pub fn whole_message(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    body.len() >= length
}

#[cfg(test)]
mod tests {
    use super::whole_message;

    #[test]
    fn a_message_is_whole_once_its_body_is() {
        assert!(!whole_message(b"GET / HTTP/1.1\r\nhost: a\r\n"));
        assert!(whole_message(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n"));
        assert!(!whole_message(
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab"
        ));
        assert!(whole_message(
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd"
        ));
    }
}
