// Package pgtest gives tests a throw-away PostgreSQL database on the test
// server: created empty with a random name, dropped when the test ends.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultAdminURL is the test PostgreSQL unless WICKET_TEST_PG names
// another; it must be allowed to create and drop databases.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// AdminURL is the URL tests create databases through.
func AdminURL() string {
	if u := os.Getenv("WICKET_TEST_PG"); u != "" {
		return u
	}
	return DefaultAdminURL
}

// Database creates an empty database named prefix_<random> and returns
// its URL; it is dropped (with FORCE) when the test ends. An unreachable
// server fails the test saying how to provide one.
func Database(t testing.TB, prefix string) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	name := prefix + "_" + hex.EncodeToString(b[:])
	admin, err := url.Parse(AdminURL())
	if err != nil {
		t.Fatalf("WICKET_TEST_PG: %v", err)
	}
	if err := exec("CREATE DATABASE " + pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("PostgreSQL for tests unreachable at %s: %v\nstart it (user postgres, trust auth on 127.0.0.1:5432) or set WICKET_TEST_PG to an admin URL allowed to CREATE DATABASE",
			admin.Redacted(), err)
	}
	t.Cleanup(func() {
		if err := exec("DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize() + " WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	admin.Path = "/" + name
	return admin.String()
}

func exec(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}
