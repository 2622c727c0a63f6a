//! The HTTP benchmark's load generator: a fixed number of keep-alive HTTP/1.1
//! connections to one address, each sending `GET /` and reading the whole response
//! before the next (closed loop, so the load is bounded by the connections), for a
//! fixed time. Prints one line: `requests_per_second=<n> requests=<n> errors=<n>
//! non_200=<n>`.
//!
//! ```sh
//! loadgen <addr> [--connections 32] [--seconds 10]
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper::Request;
use hyper_util::rt::TokioIo;

fn arg(args: &[String], name: &str, default: u64) -> Result<u64, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a number")),
    }
}

/// One connection's loop: (requests, non-200 answers, errors).
async fn connection(addr: SocketAddr, until: Instant) -> (u64, u64, u64) {
    let (mut done, mut non_200, mut errors) = (0, 0, 0);
    let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
        return (0, 0, 1);
    };
    let _ = stream.set_nodelay(true);
    let Ok((mut sender, conn)) = http1::handshake(TokioIo::new(stream)).await else {
        return (0, 0, 1);
    };
    tokio::spawn(conn);
    let uri = format!("http://{addr}/");
    while Instant::now() < until {
        let Ok(request) = Request::get(uri.as_str())
            .header("host", "bench")
            .body(Empty::<Bytes>::new())
        else {
            return (done, non_200, errors + 1);
        };
        match sender.send_request(request).await {
            Ok(response) => {
                if response.status() != 200 {
                    non_200 += 1;
                }
                if response.into_body().collect().await.is_err() {
                    errors += 1;
                    break;
                }
                done += 1;
            }
            Err(_) => {
                errors += 1;
                break;
            }
        }
    }
    (done, non_200, errors)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let addr: SocketAddr = args
        .get(1)
        .ok_or("usage: loadgen <addr> [--connections N] [--seconds S]")?
        .parse()?;
    let connections = arg(&args, "--connections", 32)?;
    let seconds = arg(&args, "--seconds", 10)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (requests, non_200, errors, elapsed) = runtime.block_on(async {
        let start = Instant::now();
        let until = start + Duration::from_secs(seconds);
        let tasks: Vec<_> = (0..connections)
            .map(|_| tokio::spawn(connection(addr, until)))
            .collect();
        let (mut requests, mut non_200, mut errors) = (0, 0, 0);
        for task in tasks {
            let (r, n, e) = task.await.unwrap_or((0, 0, 1));
            requests += r;
            non_200 += n;
            errors += e;
        }
        (requests, non_200, errors, start.elapsed())
    });
    let rate = requests as f64 / elapsed.as_secs_f64();
    println!("requests_per_second={rate:.0} requests={requests} errors={errors} non_200={non_200}");
    Ok(())
}
