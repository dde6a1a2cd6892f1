package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/config"
)

func newValidateCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a config file: unknown keys, CEL errors, unknown workflows, duplicate routes, access policy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(file)
			if cfg != nil {
				// Report the routes' and sagas' problems beside the
				// structural ones.
				err = errors.Join(err, bridge.Validate(cfg, bridge.Options{}))
			}
			if err != nil {
				return exitError{exitUsage, err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok, %d routes\n", file, len(cfg.Routes))
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "bridge.yaml", "config file")
	return cmd
}
