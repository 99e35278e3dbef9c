//! A private PostgreSQL database for a test: created on the server at
//! `WARDEN_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/postgres`)
//! as `warden_test_<random>`, dropped with the guard, also when the test
//! fails.

use uuid::Uuid;

/// A database of its own, dropped on drop.
pub struct TestDatabase {
    admin: String,
    name: String,
}

impl TestDatabase {
    /// Creates the database.
    pub async fn create() -> Self {
        let admin = std::env::var("WARDEN_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let name = format!("warden_test_{}", Uuid::new_v4().simple());
        let client = connect(&admin).await;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("CREATE DATABASE");
        Self { admin, name }
    }

    /// Its URI.
    pub fn uri(&self) -> String {
        let (base, _) = self
            .admin
            .rsplit_once('/')
            .expect("a URI ending with /database");
        format!("{base}/{}", self.name)
    }

    /// A connection to it, to read what the servers wrote.
    pub async fn connect(&self) -> tokio_postgres::Client {
        connect(&self.uri()).await
    }
}

async fn connect(uri: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(uri, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {uri} (WARDEN_TEST_POSTGRES): {e}"));
    tokio::spawn(connection);
    client
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // On a thread and runtime of its own: the test's may be gone.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let client = connect(&admin).await;
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}
