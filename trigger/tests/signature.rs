//! fedmsg x509 signatures against real fixtures: 2017 production messages (signature only,
//! their CA is not available) and messages signed by real fedmsg with the test PKI.

use std::collections::BTreeMap;
use std::path::PathBuf;

use taskotron_trigger::config::SignatureConfig;
use taskotron_trigger::fedmsg::{SignatureError, Verifier};

fn fx(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/fedmsg")
        .join(name)
}

fn body(name: &str) -> Vec<u8> {
    std::fs::read(fx(name)).unwrap()
}

fn pki(cn_policy: Option<&str>, crl: bool) -> Verifier {
    let mut routing_policy = BTreeMap::new();
    if let Some(cn) = cn_policy {
        routing_policy.insert(
            "org.fedoraproject.prod.buildsys.build.state.change".to_string(),
            vec![cn.to_string()],
        );
    }
    Verifier::from_config(&SignatureConfig {
        validate: true,
        ca_cert: Some(fx("test_pki/ca.crt")),
        crl: crl.then(|| fx("test_pki/crl.pem")),
        routing_policy,
        routing_nitpicky: false,
    })
    .unwrap()
}

#[test]
fn production_2017_messages_verify_signature_only() {
    let v = Verifier::signature_only();
    for f in [
        "fedmsg.buildsys.build.state.change.complete.signed.json",
        "fedmsg.buildsys.build.state.change.building.signed.json",
        "fedmsg.buildsys.tag.signed.json",
        "fedmsg.buildsys.rpm.sign.signed.floats.json",
    ] {
        assert_eq!(
            v.verify(&body(f)).unwrap(),
            "koji-koji01.phx2.fedoraproject.org",
            "{f}"
        );
    }
}

#[test]
fn all_25_datagrepper_messages_verify_after_fixing() {
    let v = Verifier::signature_only();
    let page: serde_json::Value =
        serde_json::from_slice(&body("datagrepper.raw.response.sample.json")).unwrap();
    let raw = page["raw_messages"].as_array().unwrap();
    assert_eq!(raw.len(), 25);
    // Same fix as `replay` applies (exercised through the CLI in tests/trigger_cli.rs).
    let dir = tempfile::tempdir().unwrap();
    let mut ok = 0;
    for m in raw {
        let mut m = m.clone();
        let o = m.as_object_mut().unwrap();
        o.remove("source_name");
        o.remove("source_version");
        if o.get("headers")
            .is_some_and(|h| h.as_object().is_some_and(|h| h.is_empty()))
        {
            o.remove("headers");
        }
        let ts = o["timestamp"].as_f64().unwrap() as i64;
        o.insert("timestamp".into(), ts.into());
        let p = dir.path().join("m.json");
        std::fs::write(&p, serde_json::to_vec(&m).unwrap()).unwrap();
        // Canonical re-serialisation happens inside verify(), so any JSON layout works.
        if v.verify(&std::fs::read(&p).unwrap()).is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, 25);
}

#[test]
fn tampered_message_fails() {
    let v = Verifier::signature_only();
    let text = String::from_utf8(body("fedmsg.buildsys.tag.signed.json")).unwrap();
    let bad = text.replace("\"tag\":\"f28\"", "\"tag\":\"f29\"");
    assert_ne!(text, bad);
    assert_eq!(v.verify(bad.as_bytes()), Err(SignatureError::BadSignature));
    let unsigned = body("fedmsg.git.receive.json");
    assert_eq!(
        v.verify(&unsigned),
        Err(SignatureError::Unsigned("signature"))
    );
}

#[test]
fn test_pki_good_revoked_and_wrong_cn() {
    let good = body("fedmsg.testca.signed.good.json");
    let revoked = body("fedmsg.testca.signed.revoked.json");
    // Without the CRL both chain to the CA.
    assert_eq!(
        pki(None, false).verify(&good).unwrap(),
        "trigger-test.localdomain"
    );
    assert_eq!(
        pki(None, false).verify(&revoked).unwrap(),
        "revoked-test.localdomain"
    );
    // With the CRL the revoked one is refused.
    assert!(pki(None, true).verify(&good).is_ok());
    assert_eq!(
        pki(None, true).verify(&revoked),
        Err(SignatureError::Revoked {
            cn: "revoked-test.localdomain".into()
        })
    );
    // routing_policy naming another CN refuses; naming this one accepts.
    assert!(matches!(
        pki(Some("koji-koji01.phx2.fedoraproject.org"), true).verify(&good),
        Err(SignatureError::NotAuthorized { .. })
    ));
    assert!(pki(Some("trigger-test.localdomain"), true)
        .verify(&good)
        .is_ok());
    // A production message does not chain to the test CA.
    assert!(matches!(
        pki(None, true).verify(&body("fedmsg.buildsys.tag.signed.json")),
        Err(SignatureError::Untrusted { .. })
    ));
}

#[test]
fn loopback_capture_with_non_ascii_verifies() {
    let v = pki(None, true);
    let frame = body("fedmsg.loopback-capture.buildsys.build.state.change.frame2.json");
    assert_eq!(v.verify(&frame).unwrap(), "trigger-test.localdomain");
}
