"""Device drivers: one contract (drivers.base.ConfigDriver), one module per platform x transport."""
