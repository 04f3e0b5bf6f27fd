//! Imports 20,000 users into a sandbox whose jobs take a FIXED time, and compares
//! the wall time with the ideal `ceil(jobs / 2) × latency` (two jobs at a time).
//!
//! `cargo run --release -p authmigrate-auth0 --example bench_import [USERS] [LATENCY_MS]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use authmigrate_auth0::{Auth0Auth, Auth0Backend, Auth0Settings};
use authmigrate_core::UserRecord;
use authmigrate_core::driver::{self, DriverOptions, Event, InputRecord};
use authmigrate_core::record::PasswordHash;
use authmigrate_sandbox::auth0::Auth0Config;
use authmigrate_sandbox::{FaultConfig, Sandbox, SandboxConfig};
use secrecy::SecretString;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let users: u64 = args.next().map_or(Ok(20_000), |a| a.parse())?;
    let latency = Duration::from_millis(args.next().map_or(Ok(500), |a| a.parse())?);

    let sb = Sandbox::start(SandboxConfig {
        faults: FaultConfig {
            job_latency: latency,
            ..FaultConfig::default()
        },
        auth0: Auth0Config {
            bcrypt_cost: 4,
            ..Auth0Config::default()
        },
        ..SandboxConfig::default()
    })
    .await?;
    let settings = Auth0Settings::new(
        sb.base_url(),
        Auth0Auth::ClientCredentials {
            client_id: sb.auth0().client_id().to_owned(),
            client_secret: SecretString::from(sb.auth0().client_secret().to_owned()),
        },
    );
    let backend = Arc::new(Auth0Backend::new(settings)?);
    // One cost-4 hash for everyone: the bench measures the import, not hashing.
    let hash = bcrypt::hash("bench-password", 4)?;
    let input = (0..users).map(move |i| InputRecord {
        index: i,
        record: Ok(UserRecord {
            email: Some(format!("bench{i:06}@example.com")),
            email_verified: Some(true),
            username: Some(format!("bench{i:06}")),
            name: Some(format!("Bench User {i}")),
            nickname: Some(format!("bench{i:06}")),
            password: Some(PasswordHash::bcrypt(hash.clone())),
            ..Default::default()
        }),
    });
    let jobs = Arc::new(AtomicU64::new(0));
    // Longest time a freed job slot stayed empty while chunks were waiting: the
    // driver's and backend's own overhead, independent of the emulator's speed.
    let gaps = Arc::new(std::sync::Mutex::new((None::<Instant>, Duration::ZERO)));
    let verbose = std::env::var_os("BENCH_VERBOSE").is_some();
    let t0 = Instant::now();
    let observer = {
        let jobs = jobs.clone();
        let gaps = gaps.clone();
        move |e: &Event<'_>| {
            let mut g = gaps.lock().unwrap_or_else(|e| e.into_inner());
            match e {
                Event::Submitted { .. } => {
                    jobs.fetch_add(1, Ordering::Relaxed);
                    if let Some(freed) = g.0.take() {
                        g.1 = g.1.max(freed.elapsed());
                    }
                }
                Event::JobFinished { .. } => g.0 = Some(Instant::now()),
                _ => {}
            }
            drop(g);
            if verbose && !matches!(e, Event::Record { .. }) {
                eprintln!("{:>8.3} s {e:?}", t0.elapsed().as_secs_f64());
            }
        }
    };
    let options = DriverOptions {
        poll_initial: Duration::from_millis(50),
        poll_max: Duration::from_millis(100),
        busy_wait: Duration::from_millis(50),
        ..DriverOptions::default()
    };
    let start = Instant::now();
    let summary = driver::run_import(backend, input, options, Arc::new(observer)).await?;
    let wall = start.elapsed();
    let jobs = jobs.load(Ordering::Relaxed);
    let ideal = latency * u32::try_from(jobs.div_ceil(2))?;
    println!(
        "users {users}, inserted {}, failed {}, jobs {jobs}, max concurrent {}",
        summary.inserted,
        summary.failed,
        sb.auth0().max_active_jobs_seen()
    );
    println!(
        "wall {:.3} s, ideal ceil(jobs/2) x {} ms = {:.3} s, ratio {:.3}",
        wall.as_secs_f64(),
        latency.as_millis(),
        ideal.as_secs_f64(),
        wall.as_secs_f64() / ideal.as_secs_f64()
    );
    let max_gap = gaps.lock().unwrap_or_else(|e| e.into_inner()).1;
    println!(
        "longest wait between a job ending and the next submission: {:.1} ms",
        max_gap.as_secs_f64() * 1000.0
    );
    Ok(())
}
