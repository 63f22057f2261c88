# dfkd-book: `make book` builds the book, `make test` runs the tests. Both set everything up on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FMNIST := /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
WIDGETS_JS := book/_widgets_js/widgets_js
HTML_MANAGER := @jupyter-widgets/html-manager@1.0.15
REQUIREJS := requirejs@2.3.8

.PHONY: book test setup data widgets-js teachers results clean lab

book: setup data widgets-js
	$(VENV)/bin/jupyter-book build . --all -W -n --keep-going
	@echo "Book: _build/html/index.html"

# Library tests, then every chapter executed by nbmake in fast mode (DFKD_FAST=1 shrinks every run).
test: setup data
	DFKD_FAST=1 $(PY) -m pytest -q --nbmake tests book

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[book,test]'
	touch $(STAMP)

# Fashion-MNIST: Debian's package where apt exists, else torchvision's download (needs internet).
data:
	@if [ -f $(FMNIST) ] || [ -n "$$DFKD_DATA" ]; then exit 0; \
	elif command -v apt-get >/dev/null; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq dataset-fashion-mnist; \
	else $(PY) -c "from dfkd_lib.data import find_fashion_mnist; print(find_fashion_mnist(download=True))"; fi

# Widget JavaScript for offline static pages, from npm at pinned versions (never committed).
widgets-js: $(WIDGETS_JS)/embed-amd.js $(WIDGETS_JS)/require.js

$(WIDGETS_JS)/embed-amd.js $(WIDGETS_JS)/require.js:
	mkdir -p $(WIDGETS_JS) build/npm
	cd build/npm && npm pack --silent $(HTML_MANAGER) $(REQUIREJS) >/dev/null
	tar -xzf build/npm/jupyter-widgets-html-manager-1.0.15.tgz -C build/npm package/dist/embed-amd.js
	mv build/npm/package/dist/embed-amd.js $(WIDGETS_JS)/embed-amd.js
	tar -xzf build/npm/requirejs-2.3.8.tgz -C build/npm package/require.js
	mv build/npm/package/require.js $(WIDGETS_JS)/require.js
	rm -rf build/npm

# Retrain the shipped teachers (about 20 min each on 2 CPU cores).
teachers: setup data
	$(PY) -m dfkd_lib train-teacher --dataset fashion-mnist
	$(PY) -m dfkd_lib train-teacher --dataset fashion-mnist-upper

lab: setup data widgets-js
	$(VENV)/bin/jupyter lab --allow-root book/

clean:
	rm -rf _build
