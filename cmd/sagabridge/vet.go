package main

import (
	"github.com/spf13/cobra"

	"github.com/sagabridge/sagabridge/sagas/workflowcheck"
)

func newVetCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "vet [packages]",
		Short:              "Report non-deterministic code in workflow functions",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			code := workflowcheck.Main(args, cmd.OutOrStdout(), cmd.ErrOrStderr())
			if code != 0 {
				return exitError{code, errVet}
			}
			return nil
		},
	}
}

type vetError struct{}

func (vetError) Error() string { return "workflow check failed" }

var errVet error = vetError{}
