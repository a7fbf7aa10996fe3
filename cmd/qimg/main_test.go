package main

import (
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCommandNames keeps the command table's names equal to the names
// cobra matches, which subcommands relies on to build one command only.
func TestCommandNames(t *testing.T) {
	e := &env{ctx: t.Context(), stdout: io.Discard, stderr: io.Discard}
	for _, c := range commands {
		if got := c.makeCmd(e).Name(); got != c.name {
			t.Errorf("commands lists %q for the command named %q", c.name, got)
		}
	}
	if got := subcommands(e, []string{"map", "x.qcow2"}); len(got) != 1 || got[0].Name() != "map" {
		t.Errorf("subcommands(map) built %d commands", len(got))
	}
	for _, args := range [][]string{{"--version"}, {"-v"}} {
		if got := subcommands(e, args); len(got) != 0 {
			t.Errorf("subcommands(%q) built %d commands, want none", args, len(got))
		}
	}
	for _, args := range [][]string{nil, {"--help"}, {"help", "info"}, {"nosuch"}, {"--version", "info"}} {
		if got := subcommands(e, args); len(got) != len(commands) {
			t.Errorf("subcommands(%q) built %d commands, want all %d", args, len(got), len(commands))
		}
	}
}

// TestWritersCatchInterrupt: a command that writes gets a context that
// SIGINT cancels, so that it removes its partial output.
func TestWritersCatchInterrupt(t *testing.T) {
	ctx, stop := commandContext([]string{"convert", "a", "b"})
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("SIGINT did not cancel the context of convert")
	}
}

func TestRepairs(t *testing.T) {
	for args, want := range map[string]bool{
		"x.qcow2": false, "-q x.qcow2": false, "--output=json x.qcow2": false,
		"-r all x.qcow2": true, "-qr leaks x.qcow2": true, "--repair=all x.qcow2": true, "--repair all x": true,
	} {
		if got := repairs(strings.Fields(args)); got != want {
			t.Errorf("repairs(%q) = %v", args, got)
		}
	}
}
