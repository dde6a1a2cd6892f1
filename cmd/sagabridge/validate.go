package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/sagas/registry"
)

// validation is `validate -o json|yaml`.
type validation struct {
	File     string   `json:"file"`
	OK       bool     `json:"ok"`
	Routes   int      `json:"routes"`
	Errors   []string `json:"errors,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

func newValidateCmd(sagas *registry.Registry) *cobra.Command {
	var file, output string
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a config file: unknown keys, CEL errors, unknown workflows, duplicate routes, access policy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			cfg, warnings, err := loadConfig(file, sagas)
			if output != "table" {
				v := validation{File: file, OK: err == nil}
				if cfg != nil {
					v.Routes = len(cfg.Routes)
				}
				for _, e := range flatten(err) {
					v.Errors = append(v.Errors, e.Error())
				}
				v.Warnings = warnings
				if perr := printAs(cmd.OutOrStdout(), output, v); perr != nil {
					return perr
				}
			}
			if output == "table" {
				for _, w := range warnings {
					fmt.Fprintln(cmd.ErrOrStderr(), w)
				}
			}
			if err != nil {
				return exitError{exitUsage, err}
			}
			if output == "table" {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok, %d routes, %d warnings\n", file, len(cfg.Routes), len(warnings))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "bridge.yaml", "config file")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	return cmd
}

// loadConfig is what `validate` and `run` both load: bridge.yaml, its
// saga files, routes and compensations, every problem at once (the
// routes' and sagas' beside the file's own), and the warnings. cfg is
// nil when the file could not be read or parsed. sagas are the Go sagas
// main registered, which routes may start and saga files must not name.
func loadConfig(file string, sagas *registry.Registry) (cfg *config.Config, warnings []string, err error) {
	cfg, err = config.Load(file)
	if cfg != nil {
		var more error
		warnings, more = bridge.CheckConfig(cfg, bridge.Options{Sagas: sagas})
		err = errors.Join(err, more)
	}
	return cfg, warnings, err
}

// flatten lists the errors errors.Join put together, depth first.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
