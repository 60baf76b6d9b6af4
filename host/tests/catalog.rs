//! The SQLite catalog: seeding, reads, preconditions, atomicity, hostile names.

use extconn_host::catalog::{
    Catalog, Connection, ConnectionType, Grant, GrantObject, Mutation, PreconditionFailed,
    PrincipalDef,
};

fn connection(name: &str) -> Connection {
    Connection {
        name: name.to_owned(),
        connection_type: ConnectionType::Storage,
        provider: "nodelocal".into(),
        uri: format!("nodelocal://1/{}", name.len()),
        owner: "root".into(),
        created: 1,
        updated: 1,
        version: 1,
    }
}

fn grant(object: GrantObject, grantee: &str, privilege: &str) -> Grant {
    Grant { object, grantee: grantee.into(), privilege: privilege.into(), grantable: false }
}

fn on(name: &str) -> GrantObject {
    GrantObject::Connection(name.to_owned())
}

fn user(name: &str) -> Mutation {
    Mutation::InsertPrincipal(PrincipalDef {
        name: name.into(),
        is_role: false,
        can_login: true,
        password_verifier: None,
    })
}

fn role(name: &str) -> Mutation {
    Mutation::InsertPrincipal(PrincipalDef {
        name: name.into(),
        is_role: true,
        can_login: false,
        password_verifier: None,
    })
}

fn member(role: &str, member: &str, admin_option: bool) -> Mutation {
    Mutation::PutMembership { role: role.into(), member: member.into(), admin_option }
}

fn names(catalog: &Catalog) -> Vec<String> {
    catalog.list_connections().unwrap().into_iter().map(|c| c.name).collect()
}

/// Names that break string-spliced SQL.
const HOSTILE: &[&str] = &[
    "it's",
    "\"quoted\"",
    "a; DROP TABLE connections; --",
    "with space",
    "') OR 1=1 --",
    "Mixed\"'`;Case",
];

#[test]
fn a_new_catalog_has_root_in_admin() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(dir.path()).unwrap();
    assert!(dir.path().join("catalog.db").exists());
    let root = catalog.read_principal("root").unwrap().unwrap();
    assert!(!root.is_role && root.can_login);
    assert_eq!(root.member_of, ["admin"]);
    assert_eq!(root.admin_of, ["admin"]);
    let admin = catalog.read_principal("admin").unwrap().unwrap();
    assert!(admin.is_role && !admin.can_login);
    assert!(admin.member_of.is_empty());
    assert_eq!(catalog.read_principal("nobody").unwrap(), None);
    let listed: Vec<String> =
        catalog.list_principals().unwrap().into_iter().map(|p| p.name).collect();
    assert_eq!(listed, ["admin", "root"]);
    assert!(names(&catalog).is_empty());
}

#[test]
fn the_catalog_persists_across_opens() {
    let dir = tempfile::tempdir().unwrap();
    let mut catalog = Catalog::open(dir.path()).unwrap();
    catalog.apply(&[Mutation::InsertConnection(connection("kept"))]).unwrap().unwrap();
    drop(catalog);
    let catalog = Catalog::open(dir.path()).unwrap();
    assert_eq!(names(&catalog), ["kept"]);
    // Seeding ran once: still exactly one root.
    assert_eq!(catalog.list_principals().unwrap().len(), 2);
    // Two handles on one directory see each other's writes (WAL, busy timeout).
    let mut other = Catalog::open(dir.path()).unwrap();
    other.apply(&[Mutation::InsertConnection(connection("second"))]).unwrap().unwrap();
    assert_eq!(names(&catalog), ["kept", "second"]);
}

#[test]
fn connections_are_exact_case_and_ordered_bytewise() {
    let mut catalog = Catalog::open_in_memory().unwrap();
    let all: Vec<Mutation> = ["foo", "Foo", "b", "Z", "é", "a_b", "a"]
        .into_iter()
        .map(|n| Mutation::InsertConnection(connection(n)))
        .collect();
    catalog.apply(&all).unwrap().unwrap();
    assert_eq!(names(&catalog), ["Foo", "Z", "a", "a_b", "b", "foo", "é"]);
    assert_eq!(catalog.read_connection("Foo").unwrap().unwrap().name, "Foo");
    assert_eq!(catalog.read_connection("FOO").unwrap(), None);
}

#[test]
fn a_round_trip_keeps_every_field() {
    let mut catalog = Catalog::open_in_memory().unwrap();
    let c = Connection {
        name: "kms".into(),
        connection_type: ConnectionType::Kms,
        provider: "aws_kms".into(),
        uri: "aws-kms:///key?AWS_SECRET_ACCESS_KEY=s".into(),
        owner: "alice".into(),
        created: 1_700_000_000_000_000,
        updated: 1_700_000_000_000_001,
        version: 7,
    };
    catalog.apply(&[Mutation::InsertConnection(c.clone())]).unwrap().unwrap();
    assert_eq!(catalog.read_connection("kms").unwrap(), Some(c));
}

#[test]
fn insert_if_absent_fails_its_precondition() {
    let mut catalog = Catalog::open_in_memory().unwrap();
    catalog.apply(&[Mutation::InsertConnection(connection("foo"))]).unwrap().unwrap();
    let again = catalog.apply(&[Mutation::InsertConnection(connection("foo"))]).unwrap();
    assert_eq!(again, Err(PreconditionFailed { index: 0 }));
    let dup_user = catalog.apply(&[user("alice"), user("root")]).unwrap();
    assert_eq!(dup_user, Err(PreconditionFailed { index: 1 }));
    assert_eq!(catalog.read_principal("alice").unwrap(), None);
}

#[test]
fn a_failed_precondition_in_the_middle_applies_nothing() {
    let mut catalog = Catalog::open_in_memory().unwrap();
    catalog.apply(&[Mutation::InsertConnection(connection("taken"))]).unwrap().unwrap();
    let result = catalog
        .apply(&[
            Mutation::InsertConnection(connection("first")),
            Mutation::PutGrant(grant(on("first"), "root", "ALL")),
            user("alice"),
            Mutation::InsertConnection(connection("taken")),
            Mutation::InsertConnection(connection("last")),
        ])
        .unwrap();
    assert_eq!(result, Err(PreconditionFailed { index: 3 }));
    assert_eq!(names(&catalog), ["taken"]);
    assert!(catalog.read_grants(&on("first")).unwrap().is_empty());
    assert_eq!(catalog.read_principal("alice").unwrap(), None);
}

#[test]
fn update_checks_the_version_and_bumps_it() {
    let mut catalog = Catalog::open_in_memory().unwrap();
    catalog.apply(&[Mutation::InsertConnection(connection("c"))]).unwrap().unwrap();
    let mut changed = connection("c");
    changed.uri = "nodelocal://1/new".into();
    changed.updated = 2;
    let stale = Mutation::UpdateConnection { connection: changed.clone(), expected_version: 5 };
    assert_eq!(catalog.apply(&[stale]).unwrap(), Err(PreconditionFailed { index: 0 }));
    assert_eq!(catalog.read_connection("c").unwrap().unwrap().uri, connection("c").uri);

    let fresh = Mutation::UpdateConnection { connection: changed.clone(), expected_version: 1 };
    catalog.apply(std::slice::from_ref(&fresh)).unwrap().unwrap();
    let stored = catalog.read_connection("c").unwrap().unwrap();
    assert_eq!((stored.uri.as_str(), stored.updated, stored.version), ("nodelocal://1/new", 2, 2));
    // The same update again is now stale.
    assert_eq!(catalog.apply(&[fresh]).unwrap(), Err(PreconditionFailed { index: 0 }));
    // Updating a missing connection fails its precondition too.
    let missing =
        Mutation::UpdateConnection { connection: connection("nope"), expected_version: 1 };
    assert_eq!(catalog.apply(&[missing]).unwrap(), Err(PreconditionFailed { index: 0 }));
}

#[test]
fn delete_connection_takes_its_grants_along() {
    let mut catalog = Catalog::open_in_memory().unwrap();
    catalog
        .apply(&[
            Mutation::InsertConnection(connection("a")),
            Mutation::InsertConnection(connection("b")),
            Mutation::PutGrant(grant(on("a"), "root", "ALL")),
            Mutation::PutGrant(grant(on("a"), "alice", "USAGE")),
            Mutation::PutGrant(grant(on("b"), "alice", "USAGE")),
            Mutation::PutGrant(grant(GrantObject::System, "alice", "EXTERNALCONNECTION")),
        ])
        .unwrap()
        .unwrap();
    catalog.apply(&[Mutation::DeleteConnection("a".into())]).unwrap().unwrap();
    assert_eq!(names(&catalog), ["b"]);
    assert!(catalog.read_grants(&on("a")).unwrap().is_empty());
    assert_eq!(
        catalog.read_grants_of("alice").unwrap(),
        [
            grant(GrantObject::System, "alice", "EXTERNALCONNECTION"),
            grant(on("b"), "alice", "USAGE")
        ]
    );
    // Absent is not an error.
    catalog.apply(&[Mutation::DeleteConnection("a".into())]).unwrap().unwrap();
}

#[test]
fn grants_are_upserted_and_deleted_by_key() {
    let mut catalog = Catalog::open_in_memory().unwrap();
    let mut g = grant(on("c"), "alice", "USAGE");
    catalog.apply(&[Mutation::PutGrant(g.clone())]).unwrap().unwrap();
    g.grantable = true;
    catalog.apply(&[Mutation::PutGrant(g.clone())]).unwrap().unwrap();
    assert_eq!(catalog.read_grants(&on("c")).unwrap(), [g.clone()]);
    catalog
        .apply(&[
            Mutation::PutGrant(grant(on("c"), "bob", "DROP")),
            Mutation::PutGrant(grant(on("c"), "alice", "DROP")),
        ])
        .unwrap()
        .unwrap();
    let listed: Vec<(String, String)> = catalog
        .read_grants(&on("c"))
        .unwrap()
        .into_iter()
        .map(|g| (g.grantee, g.privilege))
        .collect();
    assert_eq!(
        listed,
        [
            ("alice".into(), "DROP".into()),
            ("alice".into(), "USAGE".into()),
            ("bob".into(), "DROP".into())
        ]
    );
    // `grantable` does not matter for deletion.
    g.grantable = false;
    catalog.apply(&[Mutation::DeleteGrant(g)]).unwrap().unwrap();
    assert_eq!(catalog.read_grants(&on("c")).unwrap().len(), 2);
}

#[test]
fn principals_see_roles_transitively() {
    let mut catalog = Catalog::open_in_memory().unwrap();
    catalog
        .apply(&[
            user("alice"),
            role("r1"),
            role("r2"),
            role("r3"),
            member("r1", "alice", false),
            member("r2", "r1", true),
            member("r3", "r2", false),
            Mutation::PutGrant(grant(GrantObject::System, "r3", "EXTERNALCONNECTION")),
            Mutation::PutGrant(grant(GrantObject::System, "alice", "VIEWCLUSTERMETADATA")),
            Mutation::PutGrant(grant(on("c"), "r2", "USAGE")),
        ])
        .unwrap()
        .unwrap();
    let alice = catalog.read_principal("alice").unwrap().unwrap();
    assert_eq!(alice.member_of, ["r1", "r2", "r3"]);
    assert_eq!(alice.admin_of, ["r2"]);
    assert_eq!(
        alice.system_grants,
        [
            grant(GrantObject::System, "alice", "VIEWCLUSTERMETADATA"),
            grant(GrantObject::System, "r3", "EXTERNALCONNECTION"),
        ]
    );
    // A cycle terminates and a principal is never its own member.
    catalog.apply(&[member("r1", "r3", false)]).unwrap().unwrap();
    let r1 = catalog.read_principal("r1").unwrap().unwrap();
    assert_eq!(r1.member_of, ["r2", "r3"]);

    // Dropping a role removes its memberships both ways.
    catalog.apply(&[Mutation::DeletePrincipal("r2".into())]).unwrap().unwrap();
    let alice = catalog.read_principal("alice").unwrap().unwrap();
    assert_eq!(alice.member_of, ["r1"]);
    assert_eq!(catalog.read_principal("r2").unwrap(), None);
    catalog
        .apply(&[Mutation::DeleteMembership { role: "r1".into(), member: "alice".into() }])
        .unwrap()
        .unwrap();
    assert!(catalog.read_principal("alice").unwrap().unwrap().member_of.is_empty());
}

#[test]
fn hostile_names_are_data() {
    let mut catalog = Catalog::open_in_memory().unwrap();
    for name in HOSTILE {
        catalog
            .apply(&[
                Mutation::InsertConnection(connection(name)),
                user(name),
                Mutation::PutGrant(grant(on(name), name, "ALL")),
                member("admin", name, false),
            ])
            .unwrap()
            .unwrap();
    }
    let mut expected: Vec<String> = HOSTILE.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(names(&catalog), expected);
    for name in HOSTILE {
        assert_eq!(catalog.read_connection(name).unwrap().unwrap().name, *name);
        assert_eq!(catalog.read_grants(&on(name)).unwrap(), [grant(on(name), name, "ALL")]);
        assert_eq!(catalog.read_grants_of(name).unwrap().len(), 1);
        assert_eq!(catalog.read_principal(name).unwrap().unwrap().member_of, ["admin"]);
    }
    for name in HOSTILE {
        catalog.apply(&[Mutation::DeleteConnection(name.to_string())]).unwrap().unwrap();
        assert_eq!(catalog.read_connection(name).unwrap(), None);
    }
    assert!(names(&catalog).is_empty());
    // The tables are all still there.
    assert_eq!(catalog.read_principal("root").unwrap().unwrap().member_of, ["admin"]);
}
