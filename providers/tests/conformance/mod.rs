//! The suite every storage backend passes (object_store's `src/integration.rs` style).

use extconn_providers::ErrorKind;
use extconn_providers::storage::Location;

/// Put, get, list (recursive and with a delimiter), overwrite, delete, missing objects, empty
/// objects and unicode keys.
pub async fn put_get_delete_list(location: &Location) {
    // A fresh location lists as empty.
    let keys = |list: Vec<extconn_providers::ObjectMeta>| {
        list.into_iter().map(|m| (m.key, m.size)).collect::<Vec<_>>()
    };
    assert_eq!(keys(location.list("", None).await.unwrap()), vec![]);

    location.put("crdb_external_storage_location", b"sentinel".to_vec()).await.unwrap();
    location.put("dir/one", b"1".to_vec()).await.unwrap();
    location.put("dir/sub/two", b"22".to_vec()).await.unwrap();
    location.put("direct", Vec::new()).await.unwrap();

    assert_eq!(location.get("dir/sub/two").await.unwrap(), b"22");
    assert_eq!(location.get("direct").await.unwrap(), b"");

    assert_eq!(
        keys(location.list("", None).await.unwrap()),
        vec![
            ("crdb_external_storage_location".into(), 8),
            ("dir/one".into(), 1),
            ("dir/sub/two".into(), 2),
            ("direct".into(), 0),
        ]
    );
    assert_eq!(
        keys(location.list("", Some("/")).await.unwrap()),
        vec![
            ("crdb_external_storage_location".into(), 8),
            ("dir/".into(), 0),
            ("direct".into(), 0)
        ]
    );
    assert_eq!(
        keys(location.list("dir", None).await.unwrap()),
        vec![("dir/one".into(), 1), ("dir/sub/two".into(), 2), ("direct".into(), 0)]
    );
    assert_eq!(
        keys(location.list("dir/", Some("/")).await.unwrap()),
        vec![("dir/one".into(), 1), ("dir/sub/".into(), 0)]
    );
    assert_eq!(keys(location.list("crdb_", None).await.unwrap()).len(), 1);
    assert_eq!(keys(location.list("nothing/here", None).await.unwrap()), vec![]);

    // Unicode and spaces in keys survive the round trip and list as written.
    let unicode = "ünï/文件 名.txt";
    location.put(unicode, "データ".as_bytes().to_vec()).await.unwrap();
    assert_eq!(location.get(unicode).await.unwrap(), "データ".as_bytes());
    assert_eq!(
        keys(location.list("ünï/", None).await.unwrap()),
        vec![(unicode.to_owned(), "データ".len() as u64)]
    );
    location.delete(unicode).await.unwrap();

    // Overwrite replaces.
    location.put("dir/one", b"one".to_vec()).await.unwrap();
    assert_eq!(location.get("dir/one").await.unwrap(), b"one");

    // Missing objects.
    let err = location.get("missing").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.message());
    assert!(err.message().ends_with("/missing: object does not exist"), "{}", err.message());
    location.delete("missing").await.unwrap();

    for key in ["crdb_external_storage_location", "dir/one", "dir/sub/two", "direct"] {
        location.delete(key).await.unwrap();
    }
    let err = location.get("dir/one").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(keys(location.list("", None).await.unwrap()), vec![]);
}

/// An object of `size` bytes, over the multipart threshold, goes up and comes back intact.
pub async fn large_object(location: &Location, size: usize) {
    assert!(size > extconn_providers::storage::MULTIPART_THRESHOLD, "not a multipart upload");
    // Not one repeated byte: a part put at the wrong offset must show.
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    location.put("large/object", data.clone()).await.unwrap();
    let listed = location.list("large/", None).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].size, size as u64);
    let read = location.get("large/object").await.unwrap();
    assert!(read == data, "the object read back differs from the one written");
    location.delete("large/object").await.unwrap();
}
