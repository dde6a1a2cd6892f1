package main

import "testing"

// TestControlCommandsOwnTheirReason: terminate, suspend and resume each
// record their own default reason (they once shared one variable, so all
// three recorded "sagabridge workflow resume").
func TestControlCommandsOwnTheirReason(t *testing.T) {
	wf := newWorkflowCmd()
	for _, use := range []string{"terminate", "suspend", "resume"} {
		c, _, err := wf.Find([]string{use})
		if err != nil || c.Name() != use {
			t.Fatalf("workflow %s: %v", use, err)
		}
		f := c.Flags().Lookup("reason")
		if f == nil {
			t.Fatalf("workflow %s has no --reason", use)
		}
		if got, want := f.Value.String(), "sagabridge workflow "+use; got != want {
			t.Errorf("workflow %s --reason defaults to %q, want %q", use, got, want)
		}
	}
	term, _, _ := wf.Find([]string{"terminate"})
	if err := term.Flags().Set("reason", "fraud"); err != nil {
		t.Fatal(err)
	}
	sus, _, _ := wf.Find([]string{"suspend"})
	if got := sus.Flags().Lookup("reason").Value.String(); got != "sagabridge workflow suspend" {
		t.Errorf("setting terminate's --reason changed suspend's to %q", got)
	}
}
