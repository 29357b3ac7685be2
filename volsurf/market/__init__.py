"""volsurf.market"""
