package confspec

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
)

// Docs holds Go doc comments: "pkgpath.Type" for a type, and
// "pkgpath.Type.Field" for a field.
type Docs map[string]string

// ParseDocs reads the doc comments of the package in dir, whose import
// path is pkgPath, into d.
func (d Docs) ParseDocs(pkgPath, dir string) error {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				doc := ts.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				key := pkgPath + "." + ts.Name.Name
				if doc != nil {
					d[key] = clean(doc.Text())
				}
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				for _, fld := range st.Fields.List {
					text := ""
					if fld.Doc != nil {
						text = fld.Doc.Text()
					} else if fld.Comment != nil {
						text = fld.Comment.Text()
					}
					for _, n := range fld.Names {
						if text != "" {
							d[key+"."+n.Name] = clean(text)
						}
					}
				}
			}
		}
	}
	return nil
}

// clean joins a comment's lines into paragraphs.
func clean(s string) string {
	paras := strings.Split(strings.TrimSpace(s), "\n\n")
	for i, p := range paras {
		paras[i] = strings.Join(strings.Fields(p), " ")
	}
	return strings.Join(paras, "\n\n")
}
