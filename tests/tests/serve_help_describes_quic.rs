//! Issue 16, defect 10: `strand serve --help` still called QUIC "reserved" long after topics,
//! producers and consumers arrived over it, telling a new user the flag does nothing. The
//! help describes what listens there.

use std::process::Command;

#[test]
fn serve_help_says_what_the_quic_address_serves() {
    let output = Command::new(strand_tests::strand_binary())
        .args(["serve", "--help"])
        .output()
        .expect("run strand serve --help");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    let line = help
        .lines()
        .skip_while(|line| !line.contains("--quic-addr"))
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(line.contains("QUIC"), "{help}");
    assert!(!line.contains("reserved"), "{line}");
    assert!(line.contains("topics"), "{line}");
}
