//! Host tests of the console multiplexer: output order, prefixes, line breaks, loss
//! reports, fairness and the FIFO-room bound; Ctrl-A input switching as Xen's.

use super::console_mux::*;

/// Counter ticks a partial line of a VM without input waits.
const FLUSH: u64 = 100;

fn mux(vms: &[(&str, bool)]) -> Mux {
    let mut m = Mux::new(FLUSH);
    for &(name, input) in vms {
        m.add(name, input).unwrap();
    }
    m
}

fn push(m: &mut Mux, vm: usize, bytes: &[u8], now: u64) {
    for &b in bytes {
        m.push(vm, b, now);
    }
}

/// One drain with `room` at `now`: what it wrote, checked against `room`.
fn drain(m: &mut Mux, now: u64, room: usize) -> Vec<u8> {
    let mut out = Vec::new();
    m.drain(now, room, &mut |b: &[u8]| out.extend_from_slice(b));
    assert!(out.len() <= room, "wrote {} bytes into room for {room}", out.len());
    out
}

/// Drains 16 bytes at a time (a PL011's FIFO) until nothing more comes out.
fn drain_all(m: &mut Mux, now: u64) -> String {
    let mut all = Vec::new();
    loop {
        let out = drain(m, now, 16);
        if out.is_empty() {
            return String::from_utf8(all).unwrap();
        }
        all.extend(out);
    }
}

fn external_line(m: &mut Mux) -> String {
    let mut out = Vec::new();
    m.before_external_line(&mut |b: &[u8]| out.extend_from_slice(b));
    String::from_utf8(out).unwrap()
}

fn deliver(vm: usize, bytes: &[u8]) -> Route {
    let mut v = crate::util::FixedVec::new();
    for &b in bytes {
        v.push(b).unwrap();
    }
    Route::Deliver { vm, bytes: v }
}

#[test]
fn the_focus_output_passes_at_once_byte_by_byte() {
    let mut m = mux(&[("a", true), ("b", true)]);
    push(&mut m, 0, b"$ ", 0);
    assert_eq!(drain(&mut m, 0, 16), b"$ ", "a prompt without a newline shows at once");
    push(&mut m, 0, b"l", 1);
    assert_eq!(drain(&mut m, 1, 16), b"l");
    assert!(m.is_empty() && !m.pending(1));
}

#[test]
fn other_vms_lines_come_whole_behind_their_name() {
    let mut m = mux(&[("a", true), ("b", true)]);
    push(&mut m, 1, b"hello wor", 0);
    assert_eq!(drain_all(&mut m, 0), "");
    push(&mut m, 1, b"ld\r\nsecond\r\n", 1);
    assert_eq!(drain_all(&mut m, 1), "(b) hello world\r\n(b) second\r\n");
}

#[test]
fn a_partial_line_waits_for_its_end_or_its_deadline() {
    let mut m = mux(&[("a", true), ("b", false)]);
    push(&mut m, 1, b"login: ", 10);
    assert_eq!(m.deadline(), Some(10 + FLUSH));
    assert!(!m.pending(109) && !m.is_empty());
    assert_eq!(drain_all(&mut m, 109), "");
    assert!(m.pending(110));
    assert_eq!(drain_all(&mut m, 110), "(b) login: ");
    assert_eq!(m.deadline(), None);
    // The rest of the line continues it: the console is still in the middle of b's line.
    push(&mut m, 1, b"root\n", 200);
    assert_eq!(drain_all(&mut m, 200), "root\n");
}

#[test]
fn a_long_line_goes_out_in_pieces_each_behind_the_prefix_after_an_interruption() {
    let mut m = mux(&[("a", true), ("b", false)]);
    push(&mut m, 1, &[b'x'; 200], 0);
    assert_eq!(drain_all(&mut m, 0), format!("(b) {}", "x".repeat(LINE_MAX)));
    push(&mut m, 0, b"A", 1);
    assert_eq!(drain_all(&mut m, 1), "\r\nA", "a line break before another VM's bytes");
    push(&mut m, 1, b"\n", 2);
    assert_eq!(drain_all(&mut m, 2), "", "b waits while the focus's line is young");
    assert_eq!(drain_all(&mut m, 1 + FLUSH), format!("\r\n(b) {}\n", "x".repeat(200 - LINE_MAX)));
}

#[test]
fn a_line_break_goes_before_another_vms_line_when_the_console_is_mid_line() {
    let mut m = mux(&[("a", true), ("b", false)]);
    push(&mut m, 0, b"$ ", 0);
    push(&mut m, 1, b"hi\r\n", 0);
    // The focus's unfinished line is left alone while it is young (its writer may go on,
    // as a command's output does), then the other VM's line goes out on a line of its own.
    assert_eq!(drain_all(&mut m, 0), "$ ");
    assert_eq!(drain_all(&mut m, FLUSH - 1), "");
    assert_eq!(drain_all(&mut m, FLUSH), "\r\n(b) hi\r\n");
    push(&mut m, 0, b"ls", FLUSH + 1);
    assert_eq!(drain_all(&mut m, FLUSH + 1), "ls", "the focus goes on at the line start, no break");
}

#[test]
fn a_full_buffer_drops_counts_and_reports_once_where_the_loss_began() {
    let mut b = OutputBuffer::new(4);
    assert!(b"abcd".iter().all(|&c| b.push(c)));
    assert!(!b.push(b'e') && !b.push(b'f'));
    assert_eq!((b.len(), b.lost()), (4, 2));

    let mut m = mux(&[("a", true), ("b", false)]);
    push(&mut m, 1, &[b'z'; OUTPUT_CAPACITY], 0);
    push(&mut m, 1, &[b'q'; 1234], 0);
    let mut out = String::new();
    for _ in 0..4 {
        out += core::str::from_utf8(&drain(&mut m, 0, 16)).unwrap();
    }
    // Room is back: these are kept, and go out after the report.
    push(&mut m, 1, b"after\n", 1);
    out += &drain_all(&mut m, 1);
    let expected =
        format!("(b) {}\r\n(b) [armvisor: 1234 bytes of output lost]\r\n(b) after\n", "z".repeat(OUTPUT_CAPACITY));
    assert_eq!(out, expected);
    assert!(m.is_empty());
    push(&mut m, 1, b"x\n", 2);
    assert_eq!(drain_all(&mut m, 2), "(b) x\n", "the count was reset: no second report");
}

#[test]
fn a_flooding_vm_delays_another_by_one_line_at_most() {
    // The flood comes first in round-robin order and is not the focus.
    let mut m = mux(&[("flood", false), ("sh", true)]);
    for i in 0..100 {
        push(&mut m, 0, format!("line{i:02}\r\n").as_bytes(), 0);
    }
    push(&mut m, 1, b"$ ", 0);
    let mut out = drain_all(&mut m, 0);
    assert_eq!(out, "(flood) line00\r\n$ ", "the flood waits while the prompt's line is young");
    out += &drain_all(&mut m, FLUSH);
    assert!(out.starts_with("(flood) line00\r\n$ \r\n(flood) line01\r\n(flood) line02\r\n"), "{out}");

    // The other way round: the focus floods, another VM has one line.
    let mut m = mux(&[("a", true), ("b", false)]);
    for i in 0..100 {
        push(&mut m, 0, format!("a{i:02}\r\n").as_bytes(), 0);
    }
    push(&mut m, 1, b"one line\r\n", 0);
    let out = drain_all(&mut m, 0);
    assert!(out.starts_with("a00\r\n(b) one line\r\na01\r\n"), "{out}");

    // A line that arrives while the flood's turn is half out comes right after that turn.
    let mut m = mux(&[("flood", false), ("sh", true)]);
    for _ in 0..100 {
        push(&mut m, 0, &[b'f'; 100], 0);
        push(&mut m, 0, b"\n", 0);
    }
    let mut out = String::from_utf8(drain(&mut m, 0, 50)).unwrap();
    push(&mut m, 1, b"typed", 0);
    out += &drain_all(&mut m, 0);
    out += &drain_all(&mut m, FLUSH);
    let first = format!("(flood) {}\n", "f".repeat(100));
    assert!(out.starts_with(&format!("{first}typed\r\n(flood) ")), "{out}");
}

#[test]
fn the_room_bound_holds_and_nothing_is_lost_or_mixed_in_a_random_run() {
    let mut m = mux(&[("one", true), ("two", false), ("six", true)]);
    let mut seed = 0x1234_5678u32;
    let mut rand = move |n: u32| {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (seed >> 8) % n
    };
    let (mut now, mut pushed, mut out) = (0u64, [0usize; 3], Vec::new());
    for _ in 0..3000 {
        now += u64::from(rand(30));
        match rand(10) {
            0..=5 => {
                let vm = rand(3) as usize;
                let byte = if rand(8) == 0 { b'\n' } else { b"ABC"[vm] };
                pushed[vm] += usize::from(byte != b'\n');
                m.push(vm, byte, now);
            }
            6 | 7 => out.extend(drain(&mut m, now, rand(24) as usize)),
            8 => {
                for _ in 0..3 {
                    m.feed(CTRL_A);
                }
                out.extend(external_line(&mut m).bytes());
                out.extend(b"[switch]\r\n");
            }
            _ => {
                out.extend(external_line(&mut m).bytes());
                out.extend(b"[log]\r\n");
            }
        }
    }
    out.extend(drain_all(&mut m, now + FLUSH).bytes());
    assert!(m.is_empty());
    let out = String::from_utf8(out).unwrap();
    for (vm, letter) in ['A', 'B', 'C'].into_iter().enumerate() {
        assert_eq!(out.matches(letter).count(), pushed[vm], "VM {vm}'s bytes");
    }
    for line in out.split('\n') {
        assert!(!line.ends_with(") \r"), "a line with only a prefix: {line:?}");
        let letters: std::collections::BTreeSet<char> = line.chars().filter(char::is_ascii_uppercase).collect();
        assert!(letters.len() <= 1, "two VMs on one line: {line:?}");
        assert!(!line.contains("(two)") || letters.iter().all(|&c| c == 'B'), "{line:?}");
        assert!(!line.contains("[log]") || letters.is_empty(), "{line:?}");
    }
}

#[test]
fn an_external_line_ends_a_partial_line_after_the_turn_under_way() {
    let mut m = mux(&[("a", true), ("b", false)]);
    assert_eq!(external_line(&mut m), "", "at a line start: nothing to add");
    push(&mut m, 0, b"$ ", 0);
    drain_all(&mut m, 0);
    assert_eq!(external_line(&mut m), "\r\n");
    assert_eq!(external_line(&mut m), "");
    push(&mut m, 1, b"hello\n", 0);
    assert_eq!(drain(&mut m, 0, 6), b"(b) he");
    assert_eq!(external_line(&mut m), "llo\n", "b's line is not split");
    assert_eq!(drain_all(&mut m, 0), "");
    // A turn whose prefix went out, and nothing else yet, is not left as an empty line;
    // a turn that ends mid-line is followed by a line break.
    push(&mut m, 1, b"abc\nlong", 1);
    assert_eq!(drain(&mut m, 1, 2), b"(b");
    assert_eq!(external_line(&mut m), ") abc\n");
    assert_eq!(drain_all(&mut m, 1 + FLUSH), "(b) long");
    push(&mut m, 1, b"er", 2 + FLUSH);
    assert_eq!(drain(&mut m, 2 + FLUSH, 1), b"e");
    assert_eq!(external_line(&mut m), "r\r\n");
}

#[test]
fn a_focus_change_mid_line_makes_the_rest_of_the_old_focus_line_prefixed() {
    let mut m = mux(&[("a", true), ("b", true)]);
    push(&mut m, 0, b"$ ", 0);
    assert_eq!(drain_all(&mut m, 0), "$ ");
    assert_eq!((m.feed(CTRL_A), m.feed(CTRL_A), m.feed(CTRL_A)), (Route::Held, Route::Held, Route::Switched { vm: 1 }));
    assert_eq!(external_line(&mut m), "\r\n");
    assert_eq!(
        m.switch_notice().unwrap().to_string(),
        "[armvisor: console input to VM 'b'; type Ctrl-A three times to switch]"
    );
    push(&mut m, 0, b"ls", 1);
    assert_eq!(drain_all(&mut m, 1), "", "a is not the focus now: its partial line waits");
    push(&mut m, 0, b"\r\n", 2);
    assert_eq!(drain_all(&mut m, 2), "(a) ls\r\n");
}

#[test]
fn ctrl_a_three_times_moves_input_to_the_next_vm_that_takes_it() {
    let mut m = mux(&[("a", true), ("quiet", false), ("c", true)]);
    assert_eq!(m.focus(), Some(0));
    assert_eq!(m.feed(b'x'), deliver(0, b"x"));
    assert_eq!([m.feed(CTRL_A), m.feed(CTRL_A)], [Route::Held, Route::Held], "the first two are held back");
    assert_eq!(m.feed(CTRL_A), Route::Switched { vm: 2 }, "the third switches; 'quiet' takes no input");
    assert_eq!(m.focus(), Some(2));
    assert_eq!(m.feed(b'y'), deliver(2, b"y"));
    assert_eq!([m.feed(CTRL_A), m.feed(CTRL_A), m.feed(CTRL_A)][2], Route::Switched { vm: 0 }, "round again");
    // One or two Ctrl-As and another key: they reach the VM with the input, then the key.
    assert_eq!(m.feed(CTRL_A), Route::Held);
    assert_eq!(m.feed(b'c'), deliver(0, &[CTRL_A, b'c']));
    assert_eq!([m.feed(CTRL_A), m.feed(CTRL_A)], [Route::Held, Route::Held]);
    assert_eq!(m.feed(b'z'), deliver(0, &[CTRL_A, CTRL_A, b'z']));
    // The count starts over after a switch and after a released sequence.
    assert_eq!([m.feed(CTRL_A), m.feed(CTRL_A), m.feed(CTRL_A)][2], Route::Switched { vm: 2 });
    for b in 0..=255u8 {
        if let Route::Deliver { vm, .. } = m.feed(b) {
            assert_ne!(vm, 1, "input never reaches a VM that takes none");
        }
    }
}

#[test]
fn with_one_vm_ctrl_a_three_times_is_swallowed_and_announced() {
    let mut m = mux(&[("solo", true)]);
    assert!(m.start_notice().is_none(), "one VM: the console looks as it always did");
    assert_eq!([m.feed(CTRL_A), m.feed(CTRL_A), m.feed(CTRL_A)][2], Route::Switched { vm: 0 });
    assert_eq!(m.focus(), Some(0));
    assert_eq!(
        m.switch_notice().unwrap().to_string(),
        "[armvisor: console input to VM 'solo'; type Ctrl-A three times to switch]"
    );
    assert_eq!(m.feed(b'k'), deliver(0, b"k"));
    push(&mut m, 0, b"$ ", 0);
    assert_eq!(drain_all(&mut m, 0), "$ ", "the only VM has the focus: no prefix");
}

#[test]
fn start_notices_and_vms_without_input() {
    let m = mux(&[("a", true), ("b", true)]);
    let text = "console: input goes to VM 'a'; type Ctrl-A three times to move it to the next VM";
    assert_eq!(m.start_notice().unwrap().to_string(), text);
    let m = mux(&[("a", false), ("b", true)]);
    assert_eq!(m.start_notice().unwrap().to_string(), "console: input goes to VM 'b', the only VM that takes it");
    let mut m = mux(&[("a", false), ("b", false)]);
    assert_eq!(m.start_notice().unwrap().to_string(), "console: no VM takes console input");
    assert_eq!((m.focus(), m.feed(b'x'), m.feed(CTRL_A)), (None, Route::Dropped, Route::Dropped));
    assert!(m.switch_notice().is_none());
}

#[test]
fn names_are_cut_to_fit_and_the_console_has_room_for_eight_vms() {
    let mut m = Mux::new(FLUSH);
    let long = "é".repeat(20);
    assert_eq!(m.add(&long, false), Some(0));
    assert_eq!(m.name(0), Some("é".repeat(NAME_MAX / 2).as_str()));
    for i in 1..MAX_VMS {
        assert_eq!(m.add("vm", false), Some(i));
    }
    assert_eq!(m.add("ninth", false), None);
    push(&mut m, 0, b"x\n", 0);
    assert_eq!(drain_all(&mut m, 0), format!("({}) x\n", "é".repeat(16)));
}

#[test]
fn a_guest_line_that_looks_like_the_hypervisors_goes_out_behind_its_name() {
    let mut m = mux(&[("a", true), ("b", false)]);
    // The focus forges a log line: it comes out as the guest's.
    push(&mut m, 0, b"[    1.234567] I cpu0: VM 'b' powered off\r\n", 0);
    assert_eq!(drain_all(&mut m, 0), "(a) [    1.234567] I cpu0: VM 'b' powered off\r\n");
    // Linux's own printk lines start alike but are not log headers: as they are, at once.
    push(&mut m, 0, b"[    0.000000] Booting Linux\r\n", 1);
    assert_eq!(drain_all(&mut m, 1), "[    0.000000] Booting Linux\r\n");
    // A prompt that starts with '[' is told apart at its second byte.
    push(&mut m, 0, b"[root@a ~]# ", 2);
    assert_eq!(drain_all(&mut m, 2), "[root@a ~]# ");
    push(&mut m, 0, b"\r\n", 3);
    assert_eq!(drain_all(&mut m, 3), "\r\n");
    // Written a byte at a time, the header is held until it is told apart...
    let mut all = String::new();
    for (i, &c) in b"[   12.000000] W cpu3: x\n".iter().enumerate() {
        push(&mut m, 0, &[c], 10 + i as u64);
        let out = drain_all(&mut m, 10 + i as u64);
        // "[   12.000000] W cp" may still become a header; the 'u' (byte 19) decides.
        assert!(i >= 19 || out.is_empty(), "byte {i} held: {out:?}");
        all += &out;
    }
    assert_eq!(all, "(a) [   12.000000] W cpu3: x\n");
    assert!(m.is_empty());
    // ...and a line that stays undecided past the partial-line wait goes out as the guest's.
    push(&mut m, 0, b"[  3", 100);
    assert_eq!(drain_all(&mut m, 100), "");
    assert_eq!(m.deadline(), Some(100 + FLUSH));
    assert_eq!(drain_all(&mut m, 100 + FLUSH), "(a) [  3");
}
