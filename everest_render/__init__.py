"""everest-render: a pure-function compiler from OpenEverest DatabaseClusters to native operator manifests."""

__version__ = "0.1.0"
