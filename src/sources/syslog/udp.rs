//! Syslog over UDP: one message per datagram. A datagram cannot wait, so
//! when the source is behind (its budget full) what arrives is dropped and
//! counted as lost; what the kernel drops before we read it (its receive
//! buffer full) is only seen by the kernel (`netstat -su`).

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;

use super::frame::Event;
use super::gather::{Gathered, Peer, Shared};
use crate::model::time;

/// Largest UDP payload, plus one: a datagram filling it was cut.
const MAX_DATAGRAM: usize = 65_536;
/// Most datagrams read before handing them on as one parcel (fewer when
/// large).
const PARCEL: usize = 256;

pub async fn receive(socket: UdpSocket, shared: Arc<Shared>) {
    let max = shared.settings.max_message;
    // One byte over the limit tells a datagram that is too large.
    let mut buf = vec![0u8; (max + 1).min(MAX_DATAGRAM)];
    loop {
        tokio::select! {
            _ = shared.stop.cancelled() => return,
            r = socket.readable() => if let Err(e) = r {
                tracing::error!(error = %e, "syslog: the UDP socket failed");
                return;
            },
        }
        let mut gathered = Gathered::default();
        let now_us = time::now_micros();
        let mut read = 0;
        while read < PARCEL && !gathered.is_full() {
            read += 1;
            match socket.try_recv_from(&mut buf) {
                Ok((n, addr)) => {
                    let peer = Peer::of(addr);
                    let event = match n > max {
                        true => Event::TooLarge(n),
                        false => Event::Frame(&buf[..n]),
                    };
                    shared.take(event, &peer, now_us, &mut gathered);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::debug!(error = %e, "syslog: receiving a datagram failed");
                    // Whatever it is, do not spin on it.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    break;
                }
            }
        }
        shared.try_hand_on(gathered);
    }
}
